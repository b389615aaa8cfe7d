"""`srgan train` and `srgan export` end to end on generated photos: resume, interrupt, GAN, NaN, mirrored, parity."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from conftest import photo_array  # noqa: E402

from srgan_cli.cli import app  # noqa: E402
from srgan_cli.errors import SrganError  # noqa: E402
from srgan_cli.training import data, patches  # noqa: E402

pytestmark = pytest.mark.tf
runner = CliRunner()
TINY = ["--blocks", "1", "--channels", "8", "--hr-size", "24", "--batch-size", "2", "--sample-every", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    for i in range(3):
        Image.fromarray(photo_array(40 + i, 52, seed=i)).save(folder / "nested" / f"p{i}.PNG")
    Image.fromarray(photo_array(10, 10)).save(folder / "small.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return folder


def train(*args):
    result = runner.invoke(app, ["train", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_pipeline_lr_matches_pillow_bicubic():
    hr = photo_array(96, 96, seed=7)
    ours = np.asarray(data.bicubic_downscale(tf.constant(hr, tf.float32)))
    pillow = np.asarray(Image.fromarray(hr).resize((24, 24), Image.BICUBIC), dtype=np.float32)
    assert np.abs(ours - pillow).mean() < 1.0  # under 1/255 on average
    assert ours.shape == (24, 24, 3)


def test_loading_skips_small_and_unreadable_and_counts_them(photos):
    found = patches.load_photos(photos, 24)
    assert (len(found.images), found.too_small, found.unreadable) == (3, 1, 1)
    with pytest.raises(SrganError, match="no photos"):
        patches.load_photos(photos, 1000)


def test_crops_depend_only_on_seed_and_index(photos):
    images = patches.load_photos(photos, 24).images
    a, b = patches.random_crop(images, 5, 24, 0), patches.random_crop(images, 5, 24, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, patches.random_crop(images, 6, 24, 0))
    lr, hr = next(iter(data.make_dataset(images, 24, 4, seed=0)))
    assert lr.shape == (4, 6, 6, 3) and hr.shape == (4, 24, 24, 3)
    assert float(tf.reduce_min(lr)) >= 0 and float(tf.reduce_max(hr)) <= 1 and float(tf.reduce_min(hr)) >= -1


def weights(run):
    g = keras.saving.load_model(run / "generator.keras", safe_mode=True)
    return [np.asarray(w) for w in g.weights]


def test_resumed_run_equals_uninterrupted_run(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, *TINY, "--checkpoint-every", "2", "--lr", "1e-3", "-q"]
    assert train(*common, "--name", "straight", "--steps", "6").exit_code == 0
    assert train(*common, "--name", "split", "--steps", "3").exit_code == 0
    result = train("--runs", tmp_path, "--name", "split", "--steps", "6", "--resume", "-q")
    assert result.exit_code == 0, result.output
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split"), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)
    state = json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6
    assert train("--runs", tmp_path, "--name", "split", "--resume", "-q").exit_code == 0  # keeps the run's 6 steps
    assert json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())["step"] == 6
    resumed = ["--runs", tmp_path, "--name", "split", "--resume", "--lr", "5e-4", "--lr-decay-factor", "0.5", "-q"]
    assert train(*resumed, "--steps", "8", "--lr-decay-every", "1").exit_code == 0
    saved = json.loads((tmp_path / "split" / "config.json").read_text())
    assert (saved["steps"], saved["lr"], saved["arch_params"]["blocks"], saved["lr_decay_from"]) == (8, 5e-4, 1, 6)
    last_row = (tmp_path / "split" / "log.csv").read_text().splitlines()[-1]
    assert last_row.startswith("8,0.00025,")  # halved once: the new decay counts from the resume step, 6


def test_existing_run_needs_resume_and_missing_data_is_an_error(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, "--name", "r", *TINY, "--steps", "1", "-q"]
    assert train(*common).exit_code == 0
    result = train(*common)
    assert result.exit_code == 1 and "--resume" in result.output
    assert train("--data", tmp_path / "nowhere", "--runs", tmp_path, "--name", "x", "-q").exit_code == 1
    result = train("--data", photos, "--runs", tmp_path, "--name", "l", "--phase", "gan", "--lattice-weight", "1",
                   "--hr-size", "24", "-q")
    assert result.exit_code == 2 and "multiple of 32" in result.output and not (tmp_path / "l").exists()


def test_sigterm_checkpoints_and_resume_continues(photos, tmp_path):
    cmd = [sys.executable, "-m", "srgan_cli", "train", "--data", str(photos), "--runs", str(tmp_path), "--name", "s",
           *TINY, "--steps", "100000", "--checkpoint-every", "1000", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "s" / "log.csv"
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # saved, and the scheduler sees the stop
    step = json.loads((tmp_path / "s" / "checkpoint" / "state.json").read_text())["step"]
    assert step >= 50  # logged at least once, and checkpointed where it stopped (not at a 1000-step interval)
    result = train("--runs", tmp_path, "--name", "s", "--steps", step + 2, "--resume", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s" / "checkpoint" / "state.json").read_text())["step"] == step + 2


def test_nan_loss_stops_with_a_clear_message(photos, tmp_path, monkeypatch):
    from srgan_cli.training.trainer import Trainer

    real_step = Trainer.train_step
    calls = {"n": 0}

    def poisoned(self, lr, hr, generator=True):
        calls["n"] += 1
        out = real_step(self, lr, hr, generator)
        return {k: float("nan") for k in out} if calls["n"] >= 3 else out

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    result = train("--data", photos, "--runs", tmp_path, "--name", "n", *TINY, "--steps", "10",
                   "--checkpoint-every", "2", "-q")
    assert result.exit_code == 1 and "nan at step 3" in result.output.lower()
    assert json.loads((tmp_path / "n" / "checkpoint" / "state.json").read_text())["step"] == 2


def test_validation_keeps_best_generator_and_samples(photos, tmp_path):
    result = train("--data", photos, "--val", photos / "nested", "--runs", tmp_path, "--name", "v",
                   "--blocks", "1", "--channels", "8", "--hr-size", "24", "--batch-size", "2",
                   "--steps", "4", "--val-every", "2", "--sample-every", "2", "-q")
    assert result.exit_code == 0, result.output
    run = tmp_path / "v"
    assert (run / "best_generator.keras").exists() and (run / "best_generator.weights.h5").exists()
    assert not list(run.glob("*partial*"))  # generators are saved through temporary names, then renamed
    assert len(list((run / "samples").glob("*.png"))) == 2
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and "val_psnr" in rows[0]
    assert Image.open(next((run / "samples").glob("*.png"))).size == (72, 24)


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
    result = runner.invoke(app, ["export", str(tmp_path / "w" / "generator.weights.h5"), "-o", str(out), "--fp16"])
    assert result.exit_code == 0, result.output
    import onnx
    types = {init.data_type for init in onnx.load(str(out)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types


def test_export_refuses_a_corrupted_model(photos, tmp_path):
    assert train("--data", photos, "--runs", tmp_path, "--name", "c", *TINY, "--steps", "1", "-q").exit_code == 0
    g = keras.saving.load_model(tmp_path / "c" / "generator.keras", safe_mode=True)
    poisoned = [np.full_like(w, np.nan) if i == 0 else w for i, w in enumerate(g.get_weights())]
    g.set_weights(poisoned)
    g.save(tmp_path / "bad.keras")
    result = runner.invoke(app, ["export", str(tmp_path / "bad.keras"), "-o", str(tmp_path / "bad.onnx")])
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not (tmp_path / "bad.onnx").exists()


MIRRORED = """
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.trainer import Trainer
from srgan_cli.training.loop import make_strategy
from srgan_cli.training import data, patches
strategy = make_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
trainer = Trainer(TrainConfig(arch_params={"blocks": 1, "channels": 8}, hr_size=24, lr=1e-3), strategy)
images = patches.load_photos(sys.argv[1], 24).images
batches = iter(strategy.experimental_distribute_dataset(data.make_dataset(images, 24, 4, seed=0)))
before = [np.array(w) for w in trainer.generator.trainable_weights]
losses = [trainer.train_step(*next(batches))["g_loss"] for _ in range(3)]
after = [np.array(w) for w in trainer.generator.trainable_weights]
assert all(np.isfinite(losses)), losses
assert all(not np.array_equal(a, b) for a, b in zip(before, after))
print("MIRRORED OK", losses)
"""


def test_mirrored_strategy_trains_on_two_logical_cpus(photos):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(photos)], capture_output=True, text=True, timeout=300)
    assert "MIRRORED OK" in result.stdout, result.stderr[-2000:]


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


def test_mixed_precision_trains_and_exports_float32(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "mp", *TINY, "--steps", "2",
                   "--mixed-precision", "-q")
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(tmp_path / "mp" / "generator.keras"), "-o", str(tmp_path / "mp.onnx")])
    assert result.exit_code == 0, result.output
    import onnx
    model = onnx.load(str(tmp_path / "mp.onnx"))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_accelerator_pretrain_script_writes_weights_the_trainer_loads(photos, tmp_path):
    from srgan_cli.training.archs.srresnet import build_generator

    init = build_generator(1, 8)
    init.save_weights(tmp_path / "init.weights.h5")
    script = Path(__file__).resolve().parent.parent / "scripts" / "pretrain_on_accelerator.py"
    cmd = [sys.executable, str(script), "--photos", str(photos), "--init", str(tmp_path / "init.weights.h5"),
           "--out", str(tmp_path / "out.weights.h5"), "--blocks", "1", "--channels", "8", "--hr-size", "24",
           "--batch-size", "2", "--patches", "8", "--steps", "3", "--lr", "1e-3"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after 3 steps" in done.stdout
    trained = build_generator(1, 8)
    trained.load_weights(tmp_path / "out.weights.h5")
    pairs = zip(init.trainable_weights, trained.trainable_weights, strict=True)
    assert all(not np.array_equal(a, b) for a, b in pairs)
    assert not list(tmp_path.glob("*.partial.*"))


def test_weight_average_moves_toward_the_weights_and_lends_them_only_inside_the_block():
    from srgan_cli.training.archs.srresnet import build_generator
    from srgan_cli.training.averaging import WeightAverage

    generator = build_generator(1, 8)
    start = generator.get_weights()
    average = WeightAverage(generator, 0.75)
    generator.set_weights([w + 4.0 for w in start])
    average.update(generator)
    with average.applied(generator) as held:
        for w, a in zip(start, held.get_weights(), strict=False):
            np.testing.assert_allclose(a, w + 1.0, atol=1e-6)  # a quarter of the way
    for w, own in zip(start, generator.get_weights(), strict=False):
        np.testing.assert_allclose(own, w + 4.0, atol=1e-6)


def test_ema_run_saves_the_average_and_resumes_it(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, *TINY, "--checkpoint-every", "2", "--lr", "1e-3", "-q"]
    assert train(*common, "--name", "straight", "--steps", "6", "--ema", "0.5").exit_code == 0
    assert train(*common, "--name", "split", "--steps", "3", "--ema", "0.5").exit_code == 0
    assert train("--runs", tmp_path, "--name", "split", "--steps", "6", "--resume", "-q").exit_code == 0
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split"), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)
    raw = keras.saving.load_model(tmp_path / "straight" / "generator.keras", safe_mode=True)
    raw.load_weights(tmp_path / "straight" / "checkpoint" / "generator.weights.h5")
    pairs = zip(weights(tmp_path / "straight"), raw.weights, strict=True)
    moved = [not np.allclose(a, np.asarray(r)) for a, r in pairs]
    assert any(moved)  # generator.keras is the average, not the last step's weights


def test_average_weights_script_writes_the_mean_generator_and_its_config(tmp_path):
    from srgan_cli.training.archs.srresnet import build_generator
    from srgan_cli.training.config import TrainConfig

    TrainConfig(arch_params={"blocks": 1, "channels": 8}).save(tmp_path / "config.json")
    first = build_generator(1, 8)
    second = build_generator(1, 8)
    second.set_weights([w + 2.0 for w in first.get_weights()])
    for name, model in (("a", first), ("b", second)):
        model.save_weights(tmp_path / f"{name}.weights.h5")
    script = Path(__file__).resolve().parent.parent / "scripts" / "average_weights.py"
    cmd = [sys.executable, str(script), str(tmp_path / "a.weights.h5"), str(tmp_path / "b.weights.h5"),
           "--config", str(tmp_path / "config.json"), "-o", str(tmp_path / "mean.weights.h5")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mean = build_generator(1, 8)
    mean.load_weights(tmp_path / "mean.weights.h5")
    for a, m in zip(first.get_weights(), mean.get_weights(), strict=False):
        np.testing.assert_allclose(m, a + 1.0, atol=1e-6)
    # srgan export finds the shape beside it
    assert TrainConfig.load(tmp_path / "mean.config.json").arch_params["channels"] == 8
    done = subprocess.run([*cmd, "--mix", "3", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mean.load_weights(tmp_path / "mean.weights.h5")
    for a, m in zip(first.get_weights(), mean.get_weights(), strict=False):
        np.testing.assert_allclose(m, a + 0.5, atol=1e-6)  # a quarter of the way: network interpolation
    assert subprocess.run([*cmd, "--mix", "1"], capture_output=True, text=True, timeout=300).returncode == 2
