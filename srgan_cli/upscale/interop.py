"""What Python callers hand the Upscaler (PIL images, numpy arrays) to and from Photos, with the command line's
handling of orientation and metadata, and one-line SrganErrors for what cannot be upscaled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.upscale.formats import stack_alpha
from srgan_cli.upscale.imaging import Photo, photo_from_image, photo_from_pixels, photo_to_image

Back = Callable[[Photo], Any]  # the upscaled Photo -> what the caller passed in (a PIL image or an array)


def to_pil(photo: Photo) -> Image.Image:
    """Photo -> PIL image with its ICC profile, EXIF and DPI in `.info` (16-bit colour becomes 8-bit: PIL has no
    16-bit colour mode; 16-bit gray stays I;16)."""
    image = photo_to_image(photo)
    for key, value in (("icc_profile", photo.icc), ("exif", photo.exif), ("dpi", photo.dpi)):
        if value:
            image.info[key] = value
    return image


def _array_back(dtype: np.dtype, squeeze: bool) -> Back:
    def back(photo: Photo) -> np.ndarray:
        pixels = stack_alpha(photo)
        if np.issubdtype(dtype, np.floating):
            pixels = (pixels.astype(np.float64) / 65535.0).astype(dtype)
        return pixels[..., 0] if squeeze else pixels
    return back


def photo_from_array(array: np.ndarray) -> tuple[Photo, Back]:
    """An HxW or HxWxC (C 1-4, alpha last) array -> (Photo, the way back to an array of the same dtype and shape).

    uint8 and uint16 keep their bit depth; floats (read as [0, 1]) are computed at 16 bits.

    Raises:
        SrganError: another shape or dtype, or an empty array.
    """
    if array.size == 0 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise SrganError(f"cannot upscale an array of shape {array.shape}: use HxW or HxWxC, C 1-4 (alpha last)")
    squeeze = array.ndim == 2
    pixels = array[..., None] if squeeze else array
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = np.round(np.clip(np.nan_to_num(pixels), 0.0, 1.0) * 65535.0).astype(np.uint16)
    elif pixels.dtype not in (np.uint8, np.uint16):
        raise SrganError(f"cannot upscale {pixels.dtype} pixels: use uint8, uint16 or floats in [0, 1]")
    return photo_from_pixels(np.ascontiguousarray(pixels)), _array_back(array.dtype, squeeze)


def photo_from_input(image: Any) -> tuple[Photo, Back]:
    """A PIL image or numpy array -> (Photo, the way back to the same kind of object).

    Raises:
        SrganError: anything else, or an image that cannot be decoded.
    """
    if isinstance(image, Image.Image):
        return photo_from_image(image), to_pil
    if isinstance(image, np.ndarray):
        return photo_from_array(image)
    raise SrganError(f"cannot upscale a {type(image).__name__}: pass a PIL image or a numpy array "
                     "(files: Upscaler.upscale_file)")
