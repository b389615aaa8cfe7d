"""`srgan export` never replaces what it was not asked to: its own source (ever), an existing output (without
--overwrite), a file that appeared while it ran; and its inputs fail in one line: photos of any size calibrate, an
empty --check-photos folder is refused up front, a corrupt .keras says so, a checkpoint's weights find their config."""

import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

from srgan_cli.cli import app
from srgan_cli.errors import SrganError
from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model
from tests.training.helpers import TINY, runner, train

MIXED = [(100, 120), (140, 90), (200, 240), (72, 160), (40, 40)]  # LR sides 25, 22, 50, 18 and 10 (too small)


def _export(*args):
    result = runner.invoke(app, ["export", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def _no_conversion(*args, **kwargs):
    raise AssertionError("export started converting before refusing its output")


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    """A tiny run trained for one step (TensorFlow)."""
    pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("safety")
    assert train("--data", photos, "--runs", root, "--name", "run", *TINY, "--steps", "1", "-q").exit_code == 0
    return root / "run"


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the tiny run for one test, which it may damage."""
    return shutil.copytree(trained, tmp_path / "run")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A Keras-free x4 ONNX model and photo folders: small photos of mixed sizes, held-out photos, an empty one."""
    root = tmp_path_factory.mktemp("safety_int8")
    make_sr_model(root / "m.onnx", depth=4, kernel=3, metadata={**SRGAN_META, "source": "test"})
    for name, sizes in (("mixed", MIXED), ("check", [(96, 96), (96, 96)])):
        (root / name).mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(photo_array(h, w, seed=i)).save(root / name / f"p{i}.png")
    (root / "empty").mkdir()
    return root


@pytest.mark.tf
def test_export_never_replaces_its_own_source(run, monkeypatch):
    from srgan_cli.training import export

    monkeypatch.setattr(export, "load_generator", _no_conversion)
    keras_bytes, config = (run / "generator.keras").read_bytes(), (run / "config.json").read_bytes()
    for extra in ((), ("--overwrite",)):
        done = _export(run / "generator.keras", "-o", run / "generator.keras", *extra)
        assert done.exit_code == 2 and "is the input" in done.output and "refusing to replace it" in done.output
    for source in (run, run / "generator.weights.h5"):
        done = _export(source, "-o", run / "config.json", "--overwrite")
        assert done.exit_code == 2 and "is a file of the input" in done.output
    assert (run / "generator.keras").read_bytes() == keras_bytes and (run / "config.json").read_bytes() == config


@pytest.mark.tf
def test_export_refuses_an_existing_output_unless_overwrite(run, tmp_path, monkeypatch):
    from srgan_cli.training import export

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_text("keep")
    (tmp_path / "existing.onnx").write_text("keep")
    with monkeypatch.context() as patch:
        patch.setattr(export, "load_generator", _no_conversion)
        for args in ((run,), (run, "-o", "existing.onnx")):
            done = _export(*args)
            assert done.exit_code == 1 and "output exists (use --overwrite to replace it)" in done.output
    assert (tmp_path / "model.onnx").read_text() == (tmp_path / "existing.onnx").read_text() == "keep"
    done = _export(run, "-o", "existing.onnx", "--overwrite")
    assert done.exit_code == 0, done.output
    assert onnx.load(str(tmp_path / "existing.onnx")).graph.node


@pytest.mark.tf
def test_export_never_replaces_a_file_that_appeared_while_it_ran(run, tmp_path, monkeypatch):
    from srgan_cli.training import export

    late, real_parity = tmp_path / "late.onnx", export.parity

    def parity_while_another_writes(*args, **kwargs):
        late.write_text("another process")
        return real_parity(*args, **kwargs)

    monkeypatch.setattr(export, "parity", parity_while_another_writes)
    done = _export(run, "-o", late)
    assert done.exit_code == 1 and "appeared while exporting; not replaced" in done.output
    assert late.read_text() == "another process" and not list(tmp_path.glob(".late.onnx*"))


@pytest.mark.tf
def test_export_says_a_corrupt_keras_file_cannot_be_read(run, tmp_path):
    data = (run / "generator.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[:len(data) // 2])
    done = _export(tmp_path / "truncated.keras", "-o", tmp_path / "t.onnx")
    assert done.exit_code == 1 and "cannot be read as a Keras model" in done.output
    assert "File not found" not in done.output and not (tmp_path / "t.onnx").exists()


@pytest.mark.tf
def test_export_of_checkpoint_weights_finds_the_run_config(run, tmp_path):
    weights = next(run.glob("checkpoint/step_*/generator.weights.h5"))
    done = _export(weights, "-o", tmp_path / "step.onnx")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "step.onnx").is_file()


def test_calibration_crops_of_mixed_small_photos_share_one_side(tiny):
    from srgan_cli.training.quantize import Recipe
    from srgan_cli.training.quantize.calibrate import calibration_crops
    from srgan_cli.training.quantize.graph import open_session
    from srgan_cli.upscale.contract import read_contract

    contract = read_contract(open_session(onnx.load(str(tiny / "m.onnx"))))
    crops = calibration_crops(tiny / "mixed", contract, Recipe())
    assert len(crops) == 8 and {c.shape for c in crops} == {crops[0].shape}  # the 40-px photo left out
    assert 18 in crops[0].shape and np.isfinite(np.stack(crops)).all()
    with pytest.raises(SrganError, match="no readable photo of at least 64x64 pixels to calibrate on"):
        calibration_crops(tiny / "mixed", contract, Recipe(photos=1, seed=_seed_drawing_the_small_photo()))


def test_photos_big_enough_for_the_recipe_keep_its_crop_size_beside_small_ones(tiny, tmp_path):
    from srgan_cli.training.quantize import Recipe
    from srgan_cli.training.quantize.calibrate import calibration_crops
    from srgan_cli.training.quantize.graph import open_session
    from srgan_cli.upscale.contract import read_contract

    for i, (h, w) in enumerate([(300, 320), (280, 300), (100, 120)]):  # LR 75, 70 and 25 px
        Image.fromarray(photo_array(h, w, seed=i)).save(tmp_path / f"p{i}.png")
    contract = read_contract(open_session(onnx.load(str(tiny / "m.onnx"))))
    crops = calibration_crops(tmp_path, contract, Recipe())
    assert {c.shape for c in crops} == {crops[0].shape} and 64 in crops[0].shape  # the 25-px photo left out


def _seed_drawing_the_small_photo():
    """A seed whose one-photo draw of the mixed folder is the 40-px photo (p4.png, the last sorted)."""
    return next(seed for seed in range(100) if np.random.default_rng(seed).permutation(len(MIXED))[0] == 4)


def test_export_int8_calibrates_on_small_photos_of_mixed_sizes(tiny):
    done = _export(tiny / "m.onnx", "--int8", "--calibration", tiny / "mixed", "--check-photos", tiny / "check",
                   "--max-drop", "50", "-o", tiny / "mixed_int8.onnx")
    assert done.exit_code == 0, done.output
    assert (tiny / "mixed_int8.onnx").is_file()


def test_export_int8_refuses_an_empty_check_folder_before_calibrating(tiny, monkeypatch):
    import srgan_cli.training.quantize as quantize

    monkeypatch.setattr(quantize, "quantize_model", _no_conversion)
    done = _export(tiny / "m.onnx", "--int8", "--calibration", tiny / "mixed", "--check-photos", tiny / "empty",
                   "-o", tiny / "never_int8.onnx")
    assert done.exit_code == 2 and f"--check-photos {tiny / 'empty'}: no photos in it" in done.output
    assert not (tiny / "never_int8.onnx").exists()


def test_export_int8_output_is_never_an_input_nor_replaced_without_overwrite(tiny, monkeypatch):
    import srgan_cli.training.quantize as quantize

    model, default = tiny / "m.onnx", tiny / "m_int8.onnx"
    default.write_text("keep")
    args = ("--int8", "--calibration", tiny / "mixed", "--check-photos", tiny / "check", "--max-drop", "50")
    with monkeypatch.context() as patch:
        patch.setattr(quantize, "quantize_model", _no_conversion)
        done = _export(model, *args)
        assert done.exit_code == 1 and f"{default}: output exists (use --overwrite" in done.output
        for output in (model, tiny / "other.onnx"):
            shutil.copy(model, tiny / "other.onnx")
            done = _export(model, *args, "-o", output, "--overwrite", "--reference", tiny / "other.onnx")
            assert done.exit_code == 2 and "is the input" in done.output
    assert default.read_text() == "keep"
    done = _export(model, *args, "--overwrite")
    assert done.exit_code == 0, done.output
    assert onnx.load(str(default)).graph.node
