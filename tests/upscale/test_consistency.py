"""LR consistency: a result that departs a little from its LR is projected back until it downscales to it, one
that departs a lot (a damaged LR the model cleaned) is left alone, the metadata turns it on, and tiles leave no
seam."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import SrganError
from srgan_cli.upscale import consistency
from srgan_cli.upscale.consistency import DEFAULT_ITERATIONS, back_project, passes_from_metadata
from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.pixels import resize_plane
from tests.conftest import SRGAN_META, photo_array
from tests.upscale.onnx_builders import make_odd_model

runner = CliRunner()


def resized(image, size):
    """Pillow's bicubic resize of each float32 channel to `size` (width, height)."""
    return np.stack([resize_plane(image[..., c], size, Image.Resampling.BICUBIC) for c in range(image.shape[2])],
                    axis=-1)


def scene(height=48, width=56):
    """A smooth float32 HR picture and its x4 bicubic LR, as the evaluation protocol makes them."""
    yy, xx = np.mgrid[0:height * 4, 0:width * 4]
    hr = np.stack([0.5 + 0.2 * np.sin(xx / 9 + c) + 0.15 * np.cos(yy / 13 - c) + 0.05 * np.sin((xx + yy) / 4)
                   for c in range(3)], axis=2).astype(np.float32)
    return hr, resized(hr, (width, height))


def rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_a_result_close_to_its_lr_is_moved_until_it_downscales_to_it():
    hr, lr = scene()
    sr = resized(lr, (hr.shape[1], hr.shape[0])) * 0.99 + 0.004  # a soft, slightly tinted result
    out = back_project(sr, lr, 4)
    size = (lr.shape[1], lr.shape[0])
    assert rms(resized(out, size), lr) < 0.1 * rms(resized(sr, size), lr)
    assert rms(out, hr) < rms(sr, hr)  # closer to the original, not only to the LR
    assert out.dtype == np.float32 and out.shape == sr.shape


def test_the_passes_run_in_lr_pixels_as_they_would_in_hr_pixels():
    """The implementation iterates on the LR grid with up-then-down as one small filter; the textbook loop resizes
    the whole result twice a pass. Inside the picture the two agree (at the edges Pillow's resize and the filter's
    repeated edge differ by a fraction of a level)."""
    hr, lr = scene()
    sr = resized(lr, (hr.shape[1], hr.shape[0])) + 0.003 * np.sin(np.arange(hr.shape[1]) / 1.7)[None, :, None]
    size, big = (lr.shape[1], lr.shape[0]), (hr.shape[1], hr.shape[0])
    textbook = sr.copy()
    gate = consistency._gate(lr - resized(sr, size))
    for _ in range(5):
        residual = lr - resized(textbook, size)
        kept = gate * residual + (1 - gate) * consistency.smooth_2d(residual, consistency.LOW_SIGMA)
        textbook += resized(kept, big)
    fast = back_project(sr, lr, 4, 5)
    assert np.abs(fast - textbook)[32:-32, 32:-32].max() < 1e-6  # 0.0003 levels
    assert np.abs(fast - textbook).max() < 2 / 255


def test_damage_the_model_took_out_is_not_put_back(monkeypatch):
    """The model's result is the clean picture; its LR carries noise of 8 levels. Projecting that back would add
    the noise to the result: the gate keeps all but its low frequencies out."""
    hr, lr = scene()
    noisy = lr + np.random.default_rng(0).normal(0, 8 / 255, lr.shape).astype(np.float32)
    gated = rms(back_project(hr, noisy, 4), hr)
    monkeypatch.setattr(consistency, "_gate", lambda residual: np.ones_like(residual[..., :1]))
    ungated = rms(back_project(hr, noisy, 4), hr)
    assert gated < 0.4 * ungated and ungated > 8 / 255  # 3.6 against 10.2 levels RMS


def test_it_checks_its_arrays_and_zero_passes_do_nothing():
    hr, lr = scene()
    assert back_project(hr, lr, 4, passes=0) is hr
    with pytest.raises(ValueError, match="not the x4 of"):
        back_project(hr[..., :2], lr, 4)


@pytest.fixture(scope="module")
def blocky_models(tmp_path_factory):
    """Nearest-neighbour x4 models: one whose metadata asks for back-projection, one silent, one with a bad value."""
    folder = tmp_path_factory.mktemp("consistency")
    return {name: make_odd_model(folder / f"{name}.onnx", metadata={**SRGAN_META, **extra})
            for name, extra in (("asks", {"consistency": "3"}), ("silent", {}), ("bad", {"consistency": "-1"}))}


def _lr(height=36, width=40, seed=0):
    return photo_array(height, width, seed=seed).astype(np.float32) / 255


def test_the_models_metadata_turns_it_on_and_the_setting_overrides_it(blocky_models):
    lr = _lr()
    nearest = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    asked = Upscaler(blocky_models["asks"])
    assert asked.consistency_passes == 3
    assert np.allclose(asked.upscale_array(lr), back_project(nearest, lr, 4, 3), atol=1e-6)
    assert not np.allclose(asked.upscale_array(lr), nearest, atol=1e-3)
    assert np.array_equal(Upscaler(blocky_models["asks"], consistency=False).upscale_array(lr), nearest)
    assert Upscaler(blocky_models["silent"]).consistency_passes == 0
    assert Upscaler(blocky_models["silent"], consistency=True).consistency_passes == DEFAULT_ITERATIONS


def test_a_bad_metadata_value_is_one_line_unless_it_is_off(blocky_models):
    with pytest.raises(SrganError, match=r"metadata has consistency '-1', not a whole number from 0 to 16; "
                                         r"pass --no-consistency"):
        Upscaler(blocky_models["bad"])
    assert Upscaler(blocky_models["bad"], consistency=False).consistency_passes == 0
    for text in ("1.5", "17", "nan", "abc", "", "٣", "²"):
        with pytest.raises(SrganError, match="not a whole number from 0 to 16"):
            passes_from_metadata({"consistency": text})
    assert passes_from_metadata({"consistency": " 6"}) == 6 and passes_from_metadata({}) == 0


@pytest.mark.parametrize("model", ["asks", "silent"])  # the metadata's 3 passes; the default's 10
def test_back_projected_tiles_leave_no_seam(blocky_models, model):
    lr = _lr(70, 90, seed=2)
    whole = Upscaler(blocky_models[model], tile=0, consistency=True).upscale_array(lr, np.uint8)
    tiled = Upscaler(blocky_models[model], tile=24, consistency=True).upscale_array(lr, np.uint8)
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_the_command_line_flags_reach_the_upscaler(blocky_models, rgb_file, tmp_path):
    outputs = {}
    for flag in ("--consistency", "--no-consistency"):
        target = tmp_path / f"{flag.strip('-')}.png"
        result = runner.invoke(app, ["upscale", str(rgb_file), "-o", str(target), "--model",
                                     str(blocky_models["silent"]), flag, "-v"])
        assert result.exit_code == 0, result.output
        said = f"consistency: {DEFAULT_ITERATIONS} back-projection passes" in result.output
        assert said == (flag == "--consistency")
        outputs[flag] = np.asarray(Image.open(target))
    lr = np.asarray(Image.open(rgb_file))
    assert np.array_equal(outputs["--no-consistency"], np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))
    assert not np.array_equal(outputs["--consistency"], outputs["--no-consistency"])
    bad = runner.invoke(app, ["upscale", str(rgb_file), "-o", str(tmp_path / "bad.png"), "--model",
                              str(blocky_models["bad"])])
    assert bad.exit_code == 1 and "not a whole number from 0 to 16" in bad.output and "Traceback" not in bad.output
