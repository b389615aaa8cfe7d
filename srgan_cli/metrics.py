"""Image quality metrics of the SR evaluation protocol: Y-channel PSNR and SSIM with a border ignored (numpy only)."""

import numpy as np


def rgb_to_y(rgb):
    """ITU-R BT.601 luma of 8-bit RGB as MATLAB's rgb2ycbcr: Y in [16, 235], float64.

    Args:
        rgb (np.ndarray): HxWx3 uint8 (or float in 0..255), or HxW grayscale (returned as is, float64).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _y_cropped(img, border):
    y = rgb_to_y(img)
    return y[border:-border, border:-border] if border else y


def psnr_y(sr, hr, border=4):
    """PSNR (peak 255) between the Y channels of two 8-bit images, ignoring `border` px on each side."""
    diff = _y_cropped(sr, border) - _y_cropped(hr, border)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def ssim_y(sr, hr, border=4):
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255) on the Y channels."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        from srgan_cli.errors import SrganError
        raise SrganError("SSIM needs scikit-image: pip install 'srgan-cli[eval]'") from None

    return float(structural_similarity(
        _y_cropped(sr, border), _y_cropped(hr, border), data_range=255.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=11))


def mod_crop(img, scale=4):
    """Crop an HxW(xC) array so both sides are multiples of `scale` (step 1 of the protocol)."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]
