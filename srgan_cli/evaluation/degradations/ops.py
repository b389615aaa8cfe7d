"""Image operations on float32 C x H x W planes (filter, resize, JPEG, noise) and their H x W x C wrappers."""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from srgan_cli.evaluation.degradations.kernels import _frozen

RESIZE_MODES = ("area", "bilinear", "bicubic")
_RESAMPLE = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # torchvision's rgb_to_grayscale, as Real-ESRGAN uses


@lru_cache(maxsize=1)
def _smooth_lengths() -> np.ndarray:
    """All 2^a 3^b 5^c up to 8192: lengths pocketfft transforms fastest."""
    lengths = sorted({2**a * 3**b * 5**c for a in range(14) for b in range(9) for c in range(6)})
    return _frozen(np.array([n for n in lengths if n <= 8192]))


def _fft_length(minimum: int) -> int:
    lengths = _smooth_lengths()
    index = int(np.searchsorted(lengths, minimum))
    return int(lengths[index]) if index < len(lengths) else minimum


def _to_planes(image: np.ndarray) -> np.ndarray:
    """H x W x C -> contiguous float32 C x H x W, the layout the pipeline works in."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def _to_pixels(planes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


@lru_cache(maxsize=1024)
def _reflect_index(length: int, pad: int) -> np.ndarray:
    """Indices of a length-``length`` axis reflect-padded by ``pad`` (numpy's / torch's 'reflect': no edge repeat)."""
    index = np.arange(-pad, length + pad)
    if length == 1:
        return _frozen(np.zeros_like(index))
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return _frozen(np.where(index >= length, period - index, index))


def _filter_planes(planes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    _, height, width = planes.shape
    pad = kernel.shape[0] // 2
    padded = planes.take(_reflect_index(height, pad), axis=1).take(_reflect_index(width, pad), axis=2)
    shape = (_fft_length(height + 2 * pad), _fft_length(width + 2 * pad))
    kernel_spectrum = np.fft.rfft2(kernel[::-1, ::-1].astype(np.float32), s=shape)
    filtered = np.fft.irfft2(np.fft.rfft2(padded, s=shape) * kernel_spectrum, s=shape)
    return filtered[:, 2 * pad : 2 * pad + height, 2 * pad : 2 * pad + width]


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter each channel with a kernel, reflect-padded, as Real-ESRGAN's filter2D (a cross-correlation).

    Computed with a real FFT of the padded planes (float32), so its cost does not grow with the kernel size.

    Args:
        image: float32 H x W x C.
        kernel: Odd-sized square kernel.

    Returns:
        float32 H x W x C.
    """
    return _to_pixels(_filter_planes(_to_planes(image), kernel))


def _resize_plane(plane: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    image = Image.frombuffer("F", (plane.shape[1], plane.shape[0]), plane, "raw", "F", 0, 1)
    return np.frombuffer(image.resize((size[1], size[0]), resample).tobytes(), np.float32).reshape(size)


def _resize_planes(planes: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    if planes.shape[1:] == tuple(size):
        return planes
    return np.stack([_resize_plane(plane, size, _RESAMPLE[mode]) for plane in planes])


def resize(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize each channel with Pillow on float32 ('F') planes, without clipping.

    Args:
        image: float32 H x W x C.
        size: Target (height, width).
        mode: ``area`` (box), ``bilinear`` or ``bicubic``.

    Returns:
        float32 height x width x C.
    """
    return _to_pixels(_resize_planes(_to_planes(image), size, mode))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and round to uint8.

    Args:
        image: Values on 0..255.

    Returns:
        uint8, same shape.
    """
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _jpeg_planes(planes: np.ndarray, quality: int) -> np.ndarray:
    pixels = to_uint8(planes).transpose(1, 2, 0)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    # Size and mode are known: run Pillow's JPEG decoder directly (Image.open's work without its header parsing).
    decoded = Image.frombytes(image.mode, image.size, buffer.getvalue(), "jpeg", image.mode, "")
    return _to_planes(np.asarray(decoded).reshape(pixels.shape))


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through Pillow's JPEG encoder (default 4:2:0 chroma subsampling for colour).

    Args:
        image: H x W x C on 0..255 (C is 1 or 3); clipped and rounded to uint8 first.
        quality: JPEG quality 1..100.

    Returns:
        float32 H x W x C, the decoded image.
    """
    return _to_pixels(_jpeg_planes(_to_planes(image), quality))


def _gaussian_planes(planes: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    shape = (1, *planes.shape[1:]) if gray else planes.shape
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(planes + noise, 0, 255)


def add_gaussian_noise(image: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise and clip to 0..255.

    Args:
        image: float32 H x W x C on 0..255.
        sigma: Standard deviation in 8-bit levels.
        gray: Same noise on every channel (otherwise independent per channel).
        rng: The noise source.

    Returns:
        float32 H x W x C on 0..255.
    """
    return _to_pixels(_gaussian_planes(_to_planes(image), sigma, gray, rng))


def _luma(planes: np.ndarray) -> np.ndarray:
    if planes.shape[0] == 1:
        return planes
    return np.tensordot(_LUMA, planes, axes=1)[None]


def _poisson_planes(planes: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    levels = to_uint8(_luma(planes) if gray else planes)
    distinct = int(np.count_nonzero(np.bincount(levels.ravel(), minlength=256)))
    vals = 2.0 ** math.ceil(math.log2(distinct))
    counts = rng.poisson(levels * (vals / 255.0))
    noise = (counts * (255.0 / vals) - levels).astype(np.float32) * np.float32(scale)
    return np.clip(planes + noise, 0, 255)


def add_poisson_noise(image: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Add Poisson (shot) noise as Real-ESRGAN's generate_poisson_noise, then clip to 0..255.

    On the image rounded to 8 bits, ``vals`` = 2 ** ceil(log2(number of distinct values)) and the noise is
    poisson(img * vals) / vals - img on 0..1, times ``scale``. Gray noise is drawn on the luma and shared by
    the channels.

    Args:
        image: float32 H x W x C on 0..255.
        scale: Multiplier of the noise.
        gray: Noise from the luma, the same on every channel.
        rng: The noise source.

    Returns:
        float32 H x W x C on 0..255.
    """
    return _to_pixels(_poisson_planes(_to_planes(image), scale, gray, rng))
