"""Grid suppression: a pattern that repeats with the LR grid is taken out, texture off its frequencies is kept, the
model's metadata turns it on, and tiles still leave no seam."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import SrganError
from srgan_cli.evaluation.metrics import grid_db
from srgan_cli.upscale.degrid import DEFAULT_SIGMA, remove_grid, sigma_from_metadata
from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.pixels import resize_plane
from tests.conftest import SRGAN_META, photo_array
from tests.upscale.onnx_builders import make_odd_model

runner = CliRunner()


def bicubic_float(lr, scale):
    """Pillow's bicubic enlargement in float32, the reference degrid measures the grid against."""
    size = (lr.shape[1] * scale, lr.shape[0] * scale)
    return np.stack([resize_plane(lr[..., c], size, Image.Resampling.BICUBIC) for c in range(lr.shape[2])], axis=-1)


def _lr(height=40, width=52, seed=0):
    return photo_array(height, width, seed=seed).astype(np.float32) / 255


def test_a_grid_added_to_bicubic_is_taken_out_to_the_last_pixel():
    lr = _lr()
    reference = bicubic_float(lr, 4)
    pattern = np.random.default_rng(1).normal(0, 0.02, (4, 4, 3)).astype(np.float32)
    pattern -= pattern.mean(axis=(0, 1))  # an offset of the whole picture is no grid: it stays
    sr = reference + np.tile(pattern, (lr.shape[0], lr.shape[1], 1))
    out = remove_grid(sr, lr, 4)
    assert np.abs(out - reference).max() < 1e-5  # the border rows and columns too
    assert out.dtype == np.float32 and out.shape == sr.shape


def test_a_grid_on_the_outermost_rows_alone_goes_without_leaking_inwards():
    """The model's zero padding gives its outermost rows and columns a grid of their own, corners included."""
    lr = _lr()
    reference = bicubic_float(lr, 4)
    pattern = np.random.default_rng(2).normal(0, 0.08, (4, 4, 3)).astype(np.float32)
    pattern -= pattern.mean(axis=(0, 1))
    edge_grid = np.zeros_like(reference)
    for rows, cols in ((slice(0, 4), slice(None)), (slice(-4, None), slice(None)), (slice(None), slice(0, 4)),
                       (slice(None), slice(-4, None))):
        edge_grid[rows, cols] = np.tile(pattern, (lr.shape[0], lr.shape[1], 1))[rows, cols]
    out = remove_grid(reference + edge_grid, lr, 4)
    assert np.abs(out - reference).max() < 0.02 * np.abs(edge_grid).max()


def test_it_checks_its_arrays_and_sigma_zero_does_nothing():
    lr = _lr()
    sr = bicubic_float(lr, 4) + 0.01
    assert remove_grid(sr, lr, 4, sigma=0) is sr
    with pytest.raises(ValueError, match="not the x4 of"):
        remove_grid(sr[..., :2], lr, 4)


def test_texture_off_the_grid_frequencies_is_kept():
    lr = _lr(64, 64)
    reference = bicubic_float(lr, 4)
    yy, xx = np.mgrid[0:256, 0:256]
    texture = 0.05 * np.sin(2 * np.pi * (0.11 * xx + 0.07 * yy))[..., None].astype(np.float32)
    out = remove_grid(reference + texture, lr, 4)
    change = (out - reference - texture)[16:-16, 16:-16]
    assert np.sqrt(np.mean(change ** 2)) < 0.02 * np.sqrt(np.mean(texture ** 2))


def test_the_grid_score_of_a_blocky_result_falls_under_the_bar():
    """Nearest-neighbour enlargement is the strongest grid there is; degridded, it scores under 7 dB (the bar of
    `srgan evaluate`'s grid column) and no worse than bicubic."""
    yy, xx = np.mgrid[0:160, 0:192]
    hr = np.stack([128 + 60 * np.sin(xx / 9 + c) + 40 * np.cos(yy / 13 - c) + 20 * np.sin((xx + yy) / 5)
                   for c in range(3)], axis=2)
    hr = np.clip(np.round(hr), 0, 255).astype(np.uint8)
    lr = np.asarray(Image.fromarray(hr).resize((48, 40), Image.Resampling.BICUBIC)).astype(np.float32) / 255
    nearest = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)

    def score(sr):
        return grid_db(np.clip(np.round(sr * 255), 0, 255).astype(np.uint8), hr)
    assert score(nearest) > 15
    assert score(remove_grid(nearest, lr, 4)) < min(7.0, score(bicubic_float(lr, 4)))


@pytest.fixture(scope="module")
def blocky_models(tmp_path_factory):
    """Nearest-neighbour x4 models: one whose metadata asks for degridding, one silent, one with a bad value."""
    folder = tmp_path_factory.mktemp("degrid")
    return {name: make_odd_model(folder / f"{name}.onnx", metadata={**SRGAN_META, **extra})
            for name, extra in (("asks", {"degrid": "1.5"}), ("silent", {}), ("bad", {"degrid": "-1"}))}


def test_the_models_metadata_turns_it_on_and_the_setting_overrides_it(blocky_models):
    lr = _lr(36, 40)
    nearest = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    asked = Upscaler(blocky_models["asks"])
    assert asked.degrid_sigma == 1.5
    assert np.allclose(asked.upscale_array(lr), remove_grid(nearest, lr, 4, 1.5), atol=1e-6)
    assert np.array_equal(Upscaler(blocky_models["asks"], degrid=False).upscale_array(lr), nearest)
    assert Upscaler(blocky_models["silent"]).degrid_sigma == 0.0
    assert np.array_equal(Upscaler(blocky_models["silent"]).upscale_array(lr), nearest)
    assert Upscaler(blocky_models["silent"], degrid=True).degrid_sigma == DEFAULT_SIGMA


def test_a_bad_metadata_value_is_one_line_unless_degrid_is_off(blocky_models):
    with pytest.raises(SrganError, match=r"metadata has degrid '-1', not a number from 0 to 4; pass --no-degrid"):
        Upscaler(blocky_models["bad"])
    assert Upscaler(blocky_models["bad"], degrid=False).degrid_sigma == 0.0
    for text in ("inf", "nan", "1e3", "4.5", "1_5", "abc", ""):
        with pytest.raises(SrganError, match="not a number from 0 to 4"):
            sigma_from_metadata({"degrid": text})
    assert sigma_from_metadata({"degrid": " 2.5"}) == 2.5 and sigma_from_metadata({}) == 0.0


def test_an_alpha_plane_upscaled_by_the_model_keeps_its_hard_edges(blocky_models):
    alpha = np.zeros((36, 40), np.uint8)
    alpha[9:27, 7:30] = 255
    rgba = np.dstack([photo_array(36, 40), alpha])
    out = Upscaler(blocky_models["asks"], alpha="model").upscale(rgba)
    assert np.array_equal(out[..., 3], np.repeat(np.repeat(alpha, 4, axis=0), 4, axis=1))
    assert not np.array_equal(out[..., :3], np.repeat(np.repeat(rgba[..., :3], 4, axis=0), 4, axis=1))


def test_degridded_tiles_leave_no_seam(blocky_models):
    lr = _lr(70, 90, seed=2)
    whole = Upscaler(blocky_models["asks"], tile=0).upscale_array(lr)
    tiled = Upscaler(blocky_models["asks"], tile=24).upscale_array(lr)
    assert np.abs(whole - tiled).max() < 1e-5


def test_the_command_line_flags_reach_the_upscaler(blocky_models, rgb_file, tmp_path):
    outputs = {}
    for flag in ("--degrid", "--no-degrid"):
        target = tmp_path / f"{flag.strip('-')}.png"
        result = runner.invoke(app, ["upscale", str(rgb_file), "-o", str(target), "--model",
                                     str(blocky_models["silent"]), flag, "-v"])
        assert result.exit_code == 0, result.output
        assert ("degrid: sigma 1.5" in result.output) == (flag == "--degrid")
        outputs[flag] = np.asarray(Image.open(target))
    lr = np.asarray(Image.open(rgb_file))
    assert np.array_equal(outputs["--no-degrid"], np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))
    assert not np.array_equal(outputs["--degrid"], outputs["--no-degrid"])
    bad = runner.invoke(app, ["upscale", str(rgb_file), "-o", str(tmp_path / "bad.png"), "--model",
                              str(blocky_models["bad"])])
    assert bad.exit_code == 1 and "not a number from 0 to 4" in bad.output and "Traceback" not in bad.output
