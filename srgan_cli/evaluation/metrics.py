"""Image quality metrics of the SR evaluation protocol (Y-channel PSNR, SSIM) and artifact scores (numpy only)."""

from __future__ import annotations

import numpy as np

from srgan_cli.errors import SrganError

SSIM_WINDOW = 11  # Gaussian window side of the reference SSIM


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of 8-bit RGB as MATLAB's rgb2ycbcr: Y in [16, 235], float64.

    Args:
        rgb (np.ndarray): HxWx3 uint8 (or float in 0..255), or HxW grayscale (returned as is, float64).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _same_size(sr: np.ndarray, hr: np.ndarray) -> None:
    if np.shape(sr)[:2] != np.shape(hr)[:2]:
        raise SrganError(f"cannot compare a {np.shape(sr)[1]}x{np.shape(sr)[0]} image with a "
                         f"{np.shape(hr)[1]}x{np.shape(hr)[0]} one")


def _y_cropped(img: np.ndarray, border: int) -> np.ndarray:
    y = rgb_to_y(img)
    return y[border:-border, border:-border] if border else y


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """PSNR (peak 255) between the Y channels of two 8-bit images, ignoring `border` px on each side.

    Args:
        sr, hr: 8-bit HxWx3 RGB (or HxW Y) images of the same size.
        border: pixels ignored at each edge.

    Returns:
        PSNR in dB; inf for identical images.
    """
    _same_size(sr, hr)
    diff = _y_cropped(sr, border) - _y_cropped(hr, border)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255) on the Y channels.

    Args:
        sr, hr: 8-bit HxWx3 RGB (or HxW Y) images of the same size, at least 11x11 inside the border.
        border: pixels ignored at each edge.

    Raises:
        SrganError: scikit-image is not installed, or the images differ in size.
    """
    _same_size(sr, hr)
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise SrganError("SSIM needs scikit-image: pip install 'srgan-cli[eval]'") from None

    return float(structural_similarity(
        _y_cropped(sr, border), _y_cropped(hr, border), data_range=255.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=SSIM_WINDOW))


def grid_db(sr: np.ndarray, hr: np.ndarray, period: int = 4, border: int = 4) -> float:
    """How strongly the Y error repeats with the LR pixel grid: the "grid" artifact of sub-pixel upsamplers.

    The error's power at the grid's harmonics (k/period cycles per pixel, DC excluded), each divided by the median
    power of its 13x13-bin neighbourhood, averaged, in dB. Measured on six BSD100 images: bicubic and srresnet_x4
    under 7 dB each; the adversarial runs of weights/README.md 7-27 dB, 13-22 dB on average.

    Args:
        sr, hr (np.ndarray): 8-bit images, sides multiples of `period` (after `mod_crop`).
        period (int): grid period in HR pixels (the scale).
        border (int): pixels ignored at each edge (rounded up to keep the sides multiples of `period`).
    """
    _same_size(sr, hr)
    edge = -(-border // period) * period
    error = _y_cropped(sr, edge) - _y_cropped(hr, edge)
    height, width = error.shape
    power = np.abs(np.fft.fft2(error - error.mean())) ** 2
    ratios = []
    for ky in range(period):
        for kx in range(period):
            if ky or kx:
                iy, ix = ky * height // period, kx * width // period
                rows, cols = (iy + np.arange(-6, 7)) % height, (ix + np.arange(-6, 7)) % width
                ratios.append((power[iy, ix] + 1e-12) / (np.median(power[np.ix_(rows, cols)]) + 1e-12))
    return float(10.0 * np.log10(np.mean(ratios)))


def colour_shift(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """The largest per-channel mean error, in 8-bit levels: a tint or brightness drift (about 0 for bicubic).

    Args:
        sr, hr (np.ndarray): 8-bit HxWx3 (or HxW) images of the same size.
        border (int): pixels ignored at each edge.
    """
    _same_size(sr, hr)
    error = np.asarray(sr, np.float64) - np.asarray(hr, np.float64)
    error = error[border:-border, border:-border] if border else error
    channels = error.shape[2] if error.ndim == 3 else 1
    return float(np.abs(error.reshape(-1, channels).mean(axis=0)).max())


def edge_overshoot(sr: np.ndarray, hr: np.ndarray, border: int = 4, window: int = 5,
                   edge_range: float = 32.0) -> float:
    """Ringing and halos: how far the Y output leaves the photo's own local range near strong edges, in levels.

    Where the HR Y channel spans at least `edge_range` levels within a `window` x `window` neighbourhood (a strong
    edge), the SR value's distance above that neighbourhood's maximum or below its minimum is averaged. An edge
    rendered soft or exact scores 0; a bright or dark line along it (the halo of over-sharpening) does not.

    Args:
        sr, hr (np.ndarray): 8-bit images of the same size.
        border (int): pixels ignored at each edge.
    """
    _same_size(sr, hr)
    from numpy.lib.stride_tricks import sliding_window_view

    sr_y, hr_y = _y_cropped(sr, border), _y_cropped(hr, border)
    pad = window // 2
    neighbourhoods = sliding_window_view(np.pad(hr_y, pad, mode="edge"), (window, window))
    low, high = neighbourhoods.min(axis=(2, 3)), neighbourhoods.max(axis=(2, 3))
    edges = high - low >= edge_range
    if not edges.any():
        return 0.0
    beyond = np.maximum(sr_y - high, 0.0) + np.maximum(low - sr_y, 0.0)
    return float(beyond[edges].mean())


def mod_crop(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Crop an HxW(xC) array so both sides are multiples of `scale` (step 1 of the protocol)."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]
