"""The evaluation protocol's metrics (metrics.py) against values worked out by hand."""

import math

import numpy as np
import pytest

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.metrics import colour_shift, edge_overshoot, grid_db, mod_crop, psnr_y, rgb_to_y, ssim_y
from tests.conftest import photo_array


def test_bt601_luma_of_black_and_white():
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_psnr_of_a_uniform_offset_ignores_the_border():
    a = np.full((20, 20, 3), 100, np.uint8)
    b = a + 10
    b[:4] = 0  # damage confined to the 4 px border must not count
    expected = 10 * math.log10(255 ** 2 / (10 * 219 / 255) ** 2)
    assert psnr_y(b, a, border=4) == pytest.approx(expected, abs=1e-9)
    assert psnr_y(a, a) == math.inf


def test_ssim_of_constant_images_matches_the_formula():
    a, b = np.full((32, 32), 100.0), np.full((32, 32), 110.0)
    c1 = (0.01 * 255) ** 2
    assert ssim_y(b, a) == pytest.approx((2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), abs=1e-6)
    assert ssim_y(a, a) == pytest.approx(1.0)


def test_colour_shift_reports_a_tint_and_ignores_zero_mean_noise():
    hr = np.full((40, 40, 3), 100, np.uint8)
    tinted = hr.copy()
    tinted[4:-4, 4:-4, 0] += 3  # the 4 px border is not scored
    noisy = hr.astype(int) + np.where(np.indices((40, 40)).sum(0)[..., None] % 2, 5, -5)
    assert colour_shift(tinted, hr) == 3.0
    assert colour_shift(noisy.astype(np.uint8), hr) == 0.0


def test_edge_overshoot_scores_a_halo_and_not_a_soft_or_exact_edge():
    hr = np.full((40, 40, 3), 60, np.uint8)
    hr[:, 20:] = 200
    soft = hr.copy()
    soft[:, 19], soft[:, 20] = 100, 160  # blurred, but inside the local range
    halo = hr.copy()
    halo[:, 21] = 240  # a bright line beside the edge
    assert edge_overshoot(hr, hr) == 0.0 and edge_overshoot(soft, hr) == 0.0
    assert edge_overshoot(halo, hr) > 5.0
    assert edge_overshoot(np.full_like(hr, 90), np.full_like(hr, 90)) == 0.0  # no edges: nothing to score


def test_grid_score_finds_a_faint_4px_grid_under_stronger_noise():
    hr = photo_array(96, 80, seed=2).astype(np.float64)
    yy, xx = np.mgrid[0:96, 0:80]
    grid = np.where((yy % 4 == 0) | (xx % 4 == 0), 1.0, 0.0)[..., None] - 7 / 16  # RMS 0.5, on the LR lattice
    noise = np.random.default_rng(0).normal(0, 2.0, grid.shape)  # RMS 2: 12 dB more power than the grid

    def as8(img):
        return np.clip(np.round(img), 0, 255).astype(np.uint8)
    assert grid_db(as8(hr + noise + grid), as8(hr)) > 10
    assert grid_db(as8(hr + noise), as8(hr)) < 4
    assert grid_db(as8(hr), as8(hr)) == 0.0  # no error at all: nothing repeats


def test_mod_crop():
    assert mod_crop(np.zeros((13, 10, 3))).shape == (12, 8, 3)


@pytest.mark.parametrize("metric", [psnr_y, ssim_y, colour_shift, edge_overshoot, lambda a, b: grid_db(a, b)])
def test_images_of_different_sizes_are_a_clear_error(metric):
    with pytest.raises(SrganError, match="cannot compare a 40x32 image with a 40x36 one"):
        metric(np.zeros((32, 40, 3), np.uint8), np.zeros((36, 40, 3), np.uint8))
