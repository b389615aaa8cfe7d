"""Tiling leaves no trace: fixed windows clamped inside the image reproduce the whole-image result."""

import numpy as np
import pytest

from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.tiling import DEFAULT_PAD, plan_axis, plan_windows, upscale_tiled
from tests.tiny_models import make_sr_model

SIZES = [(1, 1), (5, 3), (40, 40), (47, 61), (64, 128), (129, 97), (150, 170)]


@pytest.mark.parametrize("length,tile,pad", [(1, 8, 2), (7, 8, 2), (100, 32, 8), (128, 32, 40), (97, 30, 5),
                                             (1000, 192, 24), (64, 64, 0), (65, 64, 0)])
def test_axis_plan_covers_every_pixel_once_with_one_window_size(length, tile, pad):
    size, spans = plan_axis(length, tile, pad)
    kept = np.zeros(length, int)
    for start, end, win in spans:
        kept[start:end] += 1
        assert win >= 0 and win + size <= length, "window leaves the image"
        assert win <= start and end <= win + size, "kept span outside its window"
        assert start - win >= min(pad, start) and win + size - end >= min(pad, length - end), "context cut short"
    assert (kept == 1).all()
    assert size == min(length, max(e - s for s, e, _ in spans) + 2 * pad) or len(spans) == 1


def test_an_axis_that_fits_one_window_runs_whole():
    """The memory bound is the window (tile + 2 * pad): an axis up to that long is not split into overlapping tiles."""
    assert plan_axis(288, 256, 16) == (288, [(0, 288, 0)])
    assert plan_axis(480, 448, 16) == (480, [(0, 480, 0)])
    size, spans = plan_axis(289, 256, 16)
    assert len(spans) == 2 and size <= 256 + 2 * 16


def test_windows_share_one_shape():
    windows = plan_windows(333, 250, 64, 16)
    assert len({(w.height, w.width) for w in windows}) == 1
    assert len(windows) == 6 * 4


def test_tiles_are_assembled_in_place():
    image = np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)
    nearest = lambda w: w.repeat(2, axis=0).repeat(2, axis=1)  # noqa: E731
    out = upscale_tiled(image, nearest, 2, tile=8, pad=3)
    np.testing.assert_array_equal(out, nearest(image))


@pytest.mark.parametrize("height,width", SIZES)
def test_tiled_equals_whole_with_pad_at_least_the_receptive_field(deep_model_path, height, width):
    image = np.random.default_rng(height * width).random((height, width, 3), dtype=np.float32)
    whole = Upscaler(deep_model_path, device="cpu", tile=0).upscale_array(image)
    tiled = Upscaler(deep_model_path, device="cpu", tile=24, tile_pad=40).upscale_array(image)
    assert tiled.shape == (height * 4, width * 4, 3)
    assert np.abs(tiled - whole).max() < 1e-5


@pytest.mark.parametrize("height,width", [(150, 170), (97, 129)])
def test_default_pad_stays_within_one_level(deep_model_path, height, width):
    image = np.random.default_rng(3).random((height, width, 3), dtype=np.float32)
    whole = Upscaler(deep_model_path, device="cpu", tile=0).upscale_array(image, out_dtype=np.uint8)
    tiled = Upscaler(deep_model_path, device="cpu", tile=32, tile_pad=DEFAULT_PAD).upscale_array(image, np.uint8)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_too_little_context_shows_seams(deep_model_path):
    """The equality tests above can fail: with no context the tiles differ from the whole image."""
    image = np.random.default_rng(4).random((64, 64, 3), dtype=np.float32)
    whole = Upscaler(deep_model_path, device="cpu", tile=0).upscale_array(image)
    tiled = Upscaler(deep_model_path, device="cpu", tile=16, tile_pad=0).upscale_array(image)
    assert np.abs(tiled - whole).max() > 1e-2


def test_self_ensemble_of_an_equivariant_model_changes_nothing(tmp_path):
    nearest = make_sr_model(tmp_path / "pointwise.onnx", depth=1, kernel=1, metadata={"scale": 4})
    image = np.random.default_rng(5).random((20, 31, 3), dtype=np.float32)
    plain = Upscaler(nearest, device="cpu", tile=0).upscale_array(image)
    tta = Upscaler(nearest, device="cpu", tile=12, tile_pad=4, tta=True).upscale_array(image)
    assert tta.shape == (80, 124, 3)
    np.testing.assert_allclose(tta, plain, atol=1e-6)


def test_self_ensemble_averages_transformed_runs(model_path):
    image = np.random.default_rng(5).random((20, 31, 3), dtype=np.float32)
    plain = Upscaler(model_path, device="cpu", tile=0).upscale_array(image)
    tta = Upscaler(model_path, device="cpu", tile=0, tta=True).upscale_array(image)
    assert 1e-4 < np.abs(tta - plain).mean() < 0.05
