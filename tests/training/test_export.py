"""`srgan export` of trained runs: GAN run to ONNX to upscale, weights files, fp16, refusals, mixed precision."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import photo_array
from tests.training.helpers import TINY, runner, train

keras = pytest.importorskip("keras")

from srgan_cli.cli import app  # noqa: E402

pytestmark = pytest.mark.tf


def test_gan_phase_export_and_upscale_end_to_end(photos, tmp_path):
    base = ["--data", photos, "--runs", tmp_path, *TINY, "-q"]
    assert train(*base, "--name", "pre", "--steps", "2").exit_code == 0
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    vgg.save_weights(tmp_path / "vgg.weights.h5")
    result = train(*base, "--name", "gan", "--phase", "gan", "--init", tmp_path / "pre", "--steps", "2",
                   "--d-warmup", "1", "--content-loss", "vgg54", "--vgg-weights", tmp_path / "vgg.weights.h5")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "gan" / "log.csv").read_text()
    assert "d_loss" in rows.splitlines()[0]
    result = runner.invoke(app, ["export", str(tmp_path / "gan"), "-o", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output
    diff = float(result.output.split("= ")[1].split()[0])
    assert diff < 1e-4
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["scale"] == "4" and meta["layout"] == "NHWC" and meta["phase"] == "gan"
    assert [d for d in session.get_inputs()[0].shape] == ["batch", "height", "width", 3]
    Image.fromarray(photo_array(9, 13)).save(tmp_path / "in.png")
    result = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "--model", str(tmp_path / "g.onnx"), "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "in_x4.png").size == (52, 36)


def test_export_of_weights_file_and_fp16(photos, tmp_path):
    assert train("--data", photos, "--runs", tmp_path, "--name", "w", *TINY, "--steps", "1", "-q").exit_code == 0
    out = tmp_path / "w16.onnx"
    result = runner.invoke(app, ["export", str(tmp_path / "w" / "generator.weights.h5"), "-o", str(out), "--fp16",
                                 "--degrid", "1.5", "--consistency", "6"])
    assert result.exit_code == 0, result.output
    import onnx
    model = onnx.load(str(out))
    assert onnx.TensorProto.FLOAT16 in {init.data_type for init in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["degrid"] == "1.5" and meta["consistency"] == "6"  # srgan upscale degrids and back-projects


def test_export_refuses_a_corrupted_model(photos, tmp_path):
    assert train("--data", photos, "--runs", tmp_path, "--name", "c", *TINY, "--steps", "1", "-q").exit_code == 0
    g = keras.saving.load_model(tmp_path / "c" / "generator.keras", safe_mode=True)
    poisoned = [np.full_like(w, np.nan) if i == 0 else w for i, w in enumerate(g.get_weights())]
    g.set_weights(poisoned)
    g.save(tmp_path / "bad.keras")
    result = runner.invoke(app, ["export", str(tmp_path / "bad.keras"), "-o", str(tmp_path / "bad.onnx")])
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not (tmp_path / "bad.onnx").exists()


def test_export_refuses_when_onnx_disagrees_with_keras(photos, tmp_path, monkeypatch):
    from srgan_cli.training import export

    assert train("--data", photos, "--runs", tmp_path, "--name", "d", *TINY, "--steps", "1", "-q").exit_code == 0
    real_to_onnx = export.to_onnx

    def perturbed(model, scale=4):
        onnx_model = real_to_onnx(model, scale)
        from onnx import numpy_helper
        init = max(onnx_model.graph.initializer, key=lambda t: len(t.raw_data))
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
        return onnx_model

    monkeypatch.setattr(export, "to_onnx", perturbed)
    result = runner.invoke(app, ["export", str(tmp_path / "d"), "-o", str(tmp_path / "d.onnx")])
    assert result.exit_code == 1 and "differs from Keras" in result.output
    assert not (tmp_path / "d.onnx").exists()


def test_mixed_precision_trains_and_exports_float32(photos, tmp_path, monkeypatch):
    from srgan_cli.training import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # bfloat16 on this CPU (TensorFlow emulates it)
    result = train("--data", photos, "--runs", tmp_path, "--name", "mp", *TINY, "--steps", "2",
                   "--mixed-precision", "-q")
    assert result.exit_code == 0, result.output
    generator = keras.saving.load_model(tmp_path / "mp" / "generator.keras", safe_mode=True, compile=False)
    assert {layer.compute_dtype for layer in generator.layers} >= {"bfloat16"}  # on a machine without a GPU
    result = runner.invoke(app, ["export", str(tmp_path / "mp" / "generator.keras"), "-o", str(tmp_path / "mp.onnx")])
    assert result.exit_code == 0, result.output
    import onnx
    model = onnx.load(str(tmp_path / "mp.onnx"))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_mixed_precision_is_refused_on_a_cpu_without_bfloat16(photos, tmp_path, monkeypatch):
    from srgan_cli.training import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    result = train("--data", photos, "--runs", tmp_path / "runs", "--name", "mp", *TINY, "--steps", "2",
                   "--mixed-precision", "-q")
    assert result.exit_code == 1 and "no bfloat16 instructions" in result.output, result.output
    assert not (tmp_path / "runs").exists()  # nothing left behind


def test_a_keras_file_exports_in_a_fresh_process(tmp_path):
    """The generator's own layers (PixelShuffle) must be registered before the .keras file is read: a process that
    has not trained first could not load it."""
    import subprocess
    import sys

    from srgan_cli.training import archs

    archs.build_generator("srresnet", {"blocks": 1, "channels": 8}).save(tmp_path / "g.keras")
    done = subprocess.run([sys.executable, "-m", "srgan_cli", "export", str(tmp_path / "g.keras"), "-o",
                           str(tmp_path / "g.onnx")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    assert (tmp_path / "g.onnx").is_file()
