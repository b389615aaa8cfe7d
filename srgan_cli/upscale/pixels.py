"""Pixel helpers of the Upscaler: Lanczos/bicubic resizing in float precision, colour bled under transparent pixels,
tiny images mirrored out to the size a model needs (numpy and Pillow only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PIL import Image

from srgan_cli.upscale.imaging import Photo

# Smaller sides are mirrored out to this before the model sees them, and cropped after: with only the model's zero
# padding around it, a 1-px image drifted 103 levels in colour through srresnet_x4 (24 px: under 1 level).
MIN_SIDE = 32


def pad_to_min(image: np.ndarray, least: int = MIN_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """An HxWxC image mirrored out (symmetric reflection) to at least `least` a side, centred.

    Returns:
        (the padded image, (top, left) offset of the original in it).
    """
    height, width = image.shape[:2]
    extra_y, extra_x = max(0, least - height), max(0, least - width)
    if not extra_y and not extra_x:
        return image, (0, 0)
    top, left = extra_y // 2, extra_x // 2
    padded = np.pad(image, ((top, extra_y - top), (left, extra_x - left), (0, 0)), mode="symmetric")
    return padded, (top, left)


def finisher(out_dtype: type | np.dtype, gray: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Maps a float [0,1] RGB block to `out_dtype` (uint8/uint16 rounded, floats as is), as luma with `gray`."""
    dtype = np.dtype(out_dtype)
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(dtype)

    def finish(block: np.ndarray) -> np.ndarray:
        if gray:
            block = block @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
        if top is None:
            return block.astype(dtype)
        return np.round(np.clip(block, 0.0, 1.0) * top).astype(dtype)
    return finish


def resize_plane(plane: np.ndarray, size: tuple[int, int],
                 resample: Image.Resampling = Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize one HxW channel of any integer dtype in float precision to `size` (width, height), same dtype."""
    dtype = plane.dtype
    out = np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, resample))
    if np.issubdtype(dtype, np.integer):
        out = np.clip(np.round(out), 0, np.iinfo(dtype).max)
    return out.astype(dtype)


def resize_channels(image: np.ndarray, size: tuple[int, int],
                    resample: Image.Resampling = Image.Resampling.LANCZOS) -> np.ndarray:
    """Each channel of an HxWxC image resized by `resize_plane` to `size` (width, height), same dtype."""
    return np.stack([resize_plane(image[..., c], size, resample) for c in range(image.shape[2])], axis=2)


def check_enlarged(sr: np.ndarray, lr: np.ndarray, scale: int, caller: str) -> None:
    """Refuse an SR result that is not `lr` (HxWxC) enlarged `scale` times with the same channels.

    Raises:
        ValueError: naming `caller` and both shapes.
    """
    height, width, channels = lr.shape
    if sr.shape != (height * scale, width * scale, channels):
        raise ValueError(f"{caller}: a {sr.shape} result is not the x{scale} of a {lr.shape} input")


def resize_photo(photo: Photo, factor: float) -> Photo:
    """Final high-quality (Lanczos) resize of an upscaled photo by `factor`, for --outscale."""
    width, height = photo.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    color = resize_channels(photo.color, size)
    alpha = None if photo.alpha is None else resize_plane(photo.alpha, size)
    return replace(photo, color=color, alpha=alpha)


def bleed_transparent(rgb: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Replace colour under fully transparent pixels by that of the nearest visible ones (pyramid fill).

    Models mix neighbouring colours; the arbitrary (often black) colour of invisible pixels would otherwise
    leak into visible edges as a dark halo.

    Args:
        rgb: float32 HxWx3.
        visible: HxW bool, False where fully transparent.
    """
    if visible.all() or not visible.any():
        return rgb
    weight = visible.astype(np.float32)[..., None]
    return np.where(weight > 0, rgb, _pyramid_fill(rgb * weight, weight))


def _pool(array: np.ndarray) -> np.ndarray:
    """Sums of 2x2 cells (odd sides padded with zeros)."""
    height, width = array.shape[:2]
    padded = np.pad(array, ((0, height % 2), (0, width % 2), (0, 0)))
    return padded.reshape((height + 1) // 2, 2, (width + 1) // 2, 2, -1).sum(axis=(1, 3))


def _pyramid_fill(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Colour average of the nearest non-empty cells at each point (weighted: colour*weight, weight: HxWx1)."""
    height, width = weight.shape[:2]
    filled = np.divide(weighted, weight, out=np.zeros_like(weighted), where=weight > 0)
    if (weight > 0).all() or max(height, width) == 1:
        return filled
    coarse = _pyramid_fill(_pool(weighted), _pool(weight))
    coarse_up = coarse.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return np.where(weight > 0, filled, coarse_up)
