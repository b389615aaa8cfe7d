"""The one table of image formats: the suffixes `srgan` reads, and per written format its suffixes, Pillow name and
encoder. A new output format is one `WriteFormat` row in `WRITE_FORMATS` plus its encoder function.

Also here: the Photo -> bytes / PIL side (8-bit reduction, alpha flattening, the 16-bit PNG and TIFF writers).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError

if TYPE_CHECKING:  # imaging imports this module; Photo is only needed for the annotations
    from srgan_cli.upscale.imaging import Photo

# Files walked in folders and accepted as inputs (any case). GIF: first frame; BMP and GIF are written as PNG.
READ_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

WEBP_MAX_SIDE = 16383
JPEG_MAX_SIDE = 65535
JPEG_MAX_EXIF = 65533  # one APP1 segment (Pillow refuses more)
# (photo, quality 1-100, notes) -> file bytes; appends to notes every lossy conversion it makes
Encoder = Callable[["Photo", int, list[str]], bytes]


@dataclass(frozen=True)
class WriteFormat:
    """One output format.

    Attributes:
        name: the `--format` value.
        suffixes: file suffixes of the format, lower case; the first names new files. An input with one of them is
            written back in this format by default (its native output).
        pillow: Pillow's name of the format.
        encode: the encoder.
    """

    name: str
    suffixes: tuple[str, ...]
    pillow: str
    encode: Encoder


# ------------------------------------------------------------------------------------------------ Photo -> pixels


def stack_alpha(photo: Photo) -> np.ndarray:
    """HxWxC pixels with the alpha (if any) as the last channel."""
    if photo.alpha is None:
        return photo.color
    return np.concatenate([photo.color, photo.alpha[..., None]], axis=2)


def round_to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by rounding (x / 257); uint8 is returned as is."""
    return pixels if pixels.dtype == np.uint8 else np.round(pixels / 257.0).astype(np.uint8)


def to_8bit(photo: Photo, notes: list[str]) -> Photo:
    """The photo with 8-bit pixels (a note is added when 16-bit pixels are reduced)."""
    if photo.color.dtype != np.uint16:
        return photo
    notes.append("16-bit image written as 8-bit (the format has no 16-bit mode)")
    alpha = None if photo.alpha is None else round_to_8bit(photo.alpha)
    return replace(photo, color=round_to_8bit(photo.color), alpha=alpha)


def _pillow_image(array: np.ndarray) -> Image.Image:
    if array.shape[2] == 1:
        return Image.fromarray(array[..., 0])
    return Image.fromarray(array, mode={2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])


def photo_to_image(photo: Photo) -> Image.Image:
    """Photo -> PIL image (16-bit grayscale as mode I;16; 16-bit colour is reduced to 8 bits by Pillow's limits).

    Args:
        photo: the pixels (metadata is not carried into the PIL image).
    """
    if photo.color.dtype == np.uint16 and photo.color.shape[2] == 1 and photo.alpha is None:
        return Image.fromarray(photo.color[..., 0])
    return _pillow_image(stack_alpha(to_8bit(photo, [])))


def _flatten_alpha(photo: Photo, notes: list[str]) -> Photo:
    if photo.alpha is None:
        return photo
    notes.append("alpha composited on white (JPEG has no transparency)")
    top = photo.max_value
    a = photo.alpha.astype(np.float32)[..., None] / top
    color = photo.color.astype(np.float32) * a + top * (1.0 - a)
    return replace(photo, color=np.round(color).astype(photo.color.dtype), alpha=None)


# ----------------------------------------------------------------------------------------------------- encoders


def _pillow_bytes(photo: Photo, pillow_format: str, image: Image.Image | None = None, **options: Any) -> bytes:
    """Encode with Pillow (`image`: the photo already converted), carrying the ICC profile, EXIF and DPI."""
    meta = {k: v for k, v in (("icc_profile", photo.icc), ("exif", photo.exif), ("dpi", photo.dpi)) if v}
    buffer = io.BytesIO()
    (photo_to_image(photo) if image is None else image).save(buffer, format=pillow_format, **meta, **options)
    return buffer.getvalue()


PNG_RLE = {"compress_level": 1, "compress_type": 3}  # zlib's Z_RLE strategy
PNG_SAMPLE_ROWS = 16


def _png_size(image: Image.Image, options: dict[str, int]) -> int:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.tell()


def png_options(image: Image.Image) -> dict[str, int]:
    """zlib's Z_RLE where it is at most 5% larger than Pillow's default deflate, else the default.

    On photos (what an upscaler writes) Z_RLE is 3-5x faster than the default deflate and as small: PNG's row
    filters leave little for long-distance matches. On flat graphics the default is 2-3x smaller, and fast there.
    The two are compared on three strips of rows: top, middle and bottom.
    """
    tops = sorted({0, image.height // 2, max(image.height - PNG_SAMPLE_ROWS, 0)})
    strips = [image.crop((0, top, image.width, min(top + PNG_SAMPLE_ROWS, image.height))) for top in tops]
    rle, default = (sum(_png_size(strip, options) for strip in strips) for options in (PNG_RLE, {}))
    return PNG_RLE if rle <= 1.05 * default else {}


def _png_16bit(photo: Photo) -> bytes:
    """16-bit PNG via pypng (Pillow cannot write 16-bit colour), with iCCP/eXIf/pHYs chunks added after IHDR."""
    import png

    array = stack_alpha(photo)
    height, width, planes = array.shape
    writer = png.Writer(width, height, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16)
    raw = io.BytesIO()
    writer.write(raw, array.reshape(height, width * planes))
    chunks = list(png.Reader(bytes=raw.getvalue()).chunks())
    extra = []
    if photo.icc:
        extra.append((b"iCCP", b"icc\x00\x00" + zlib.compress(photo.icc)))
    if photo.exif:
        extra.append((b"eXIf", photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif))
    if photo.dpi:
        ppm = [int(round(d / 0.0254)) for d in photo.dpi]
        extra.append((b"pHYs", ppm[0].to_bytes(4, "big") + ppm[1].to_bytes(4, "big") + b"\x01"))
    buffer = io.BytesIO()
    png.write_chunks(buffer, chunks[:1] + extra + chunks[1:])
    return buffer.getvalue()


def _tiff_16bit(photo: Photo) -> bytes:
    import tifffile

    array = stack_alpha(photo)
    extrasamples = ["unassalpha"] if photo.alpha is not None else None
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array if array.shape[2] > 1 else array[..., 0],
                     photometric="rgb" if array.shape[2] >= 3 else "minisblack", extrasamples=extrasamples,
                     iccprofile=photo.icc, resolution=photo.dpi, resolutionunit="INCH" if photo.dpi else None)
    return buffer.getvalue()


def encode_png(photo: Photo, quality: int, notes: list[str]) -> bytes:
    """PNG, lossless; 16-bit stays 16-bit (colour and gray+alpha through pypng, gray through Pillow)."""
    if photo.color.dtype == np.uint16 and (photo.color.shape[2] == 3 or photo.alpha is not None):
        return _png_16bit(photo)
    image = photo_to_image(photo)
    return _pillow_bytes(photo, "PNG", image, **png_options(image))


def _fit_exif(photo: Photo, limit: int, format_name: str, notes: list[str]) -> Photo:
    """The photo without its EXIF when the block is over the format's limit (with a note)."""
    if photo.exif is None or len(photo.exif) <= limit:
        return photo
    notes.append(f"EXIF dropped: {len(photo.exif):,} bytes is over {format_name}'s limit of {limit:,}")
    return replace(photo, exif=None)


def _check_side(photo: Photo, limit: int, format_name: str) -> None:
    width, height = photo.size
    if max(width, height) > limit:
        raise SrganError(f"{width}x{height} is over {format_name}'s limit of {limit} pixels a side: "
                         "use --format png or tiff, or a smaller --outscale")


def encode_jpeg(photo: Photo, quality: int, notes: list[str]) -> bytes:
    """JPEG at `quality`: 8-bit, transparency composited on white, EXIF dropped when over JPEG's 64 KB segment."""
    _check_side(photo, JPEG_MAX_SIDE, "JPEG")
    photo = _fit_exif(photo, JPEG_MAX_EXIF, "JPEG", notes)
    return _pillow_bytes(_flatten_alpha(to_8bit(photo, notes), notes), "JPEG", quality=quality)


def encode_webp(photo: Photo, quality: int, notes: list[str]) -> bytes:
    """WebP at `quality`, 8-bit, alpha kept; at most 16383 pixels a side."""
    _check_side(photo, WEBP_MAX_SIDE, "WebP")
    return _pillow_bytes(to_8bit(photo, notes), "WEBP", quality=quality)


def encode_tiff(photo: Photo, quality: int, notes: list[str]) -> bytes:
    """TIFF, lossless; 16-bit through tifffile."""
    if photo.color.dtype == np.uint16:
        return _tiff_16bit(photo)
    return _pillow_bytes(photo, "TIFF")


# --------------------------------------------------------------------------------------------------- the table

WRITE_FORMATS: tuple[WriteFormat, ...] = (
    WriteFormat("png", (".png",), "PNG", encode_png),
    WriteFormat("jpg", (".jpg", ".jpeg"), "JPEG", encode_jpeg),
    WriteFormat("webp", (".webp",), "WEBP", encode_webp),
    WriteFormat("tiff", (".tif", ".tiff"), "TIFF", encode_tiff),
)
FALLBACK_FORMAT = WRITE_FORMATS[0]  # written for inputs without a native output (BMP, GIF)


def format_names() -> list[str]:
    """The `--format` values, in table order."""
    return [row.name for row in WRITE_FORMATS]


def find_format(key: str) -> WriteFormat | None:
    """The row named `key`: its name, one of its suffixes (dot optional) or its Pillow name, any case."""
    wanted = key.lower().lstrip(".")
    for row in WRITE_FORMATS:
        if wanted in (row.name, row.pillow.lower(), *(suffix[1:] for suffix in row.suffixes)):
            return row
    return None


def parse_format(text: str) -> WriteFormat:
    """`--format TEXT` -> its row.

    Raises:
        UsageError: not a format `srgan` writes.
    """
    row = find_format(text)
    if row is None:
        raise UsageError(f"--format {text}: use {', '.join(format_names())}")
    return row


def native_format(suffix: str) -> WriteFormat | None:
    """The format an input with this suffix is written in by default, or None (then `FALLBACK_FORMAT`)."""
    return next((row for row in WRITE_FORMATS if suffix.lower() in row.suffixes), None)


def output_format(path: str | Path, requested: str | None = None) -> WriteFormat:
    """The format to write `path` in: `requested` (a `--format` value) or else the path's suffix.

    Raises:
        SrganError: neither names a format `srgan` writes.
    """
    key = requested or Path(path).suffix
    row = find_format(key)
    if row is None:
        raise SrganError(f"{path}: cannot write '{key.lstrip('.').lower()}' images: use {', '.join(format_names())}")
    return row


def encode_photo(photo: Photo, fmt: WriteFormat | str, quality: int = 95) -> tuple[bytes, list[str]]:
    """Encode a photo as an image file in memory.

    Args:
        photo: pixels and metadata.
        fmt: a `WRITE_FORMATS` row, or a key `find_format` knows ('png', 'JPEG', '.tif', ...).
        quality: JPEG/WebP quality, 1-100.

    Returns:
        (file bytes, notes about lossy conversions made).

    Raises:
        SrganError: `fmt` is not a format `srgan` writes.
    """
    row = fmt if isinstance(fmt, WriteFormat) else find_format(fmt)
    if row is None:
        raise SrganError(f"cannot write '{fmt}' images: use {', '.join(format_names())}")
    notes: list[str] = []
    return row.encode(photo, quality, notes), notes
