"""Photo I/O: the folder walker, decoding every mode a user meets (gray, alpha, palette, CMYK, 16-bit, every TIFF
layout) with EXIF rotation and metadata. Which formats are read and written, and how they are encoded, is the table
in `srgan_cli.upscale.formats`; atomic writes and writability checks are `srgan_cli.upscale.files` (`encode_photo`,
`output_format`, `photo_to_image`, `READ_SUFFIXES`, `write_atomic` and `check_writable` are re-exported here for
callers of the photo I/O).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srgan_cli.errors import SrganError
from srgan_cli.upscale import tiff
from srgan_cli.upscale.files import check_writable, write_atomic
from srgan_cli.upscale.formats import READ_SUFFIXES, encode_photo, output_format, photo_to_image, round_to_8bit

__all__ = ["READ_SUFFIXES", "ORIENTATION", "Photo", "check_writable", "encode_photo", "find_images", "output_format",
           "photo_from_image", "photo_from_pixels", "photo_to_image", "read_photo", "read_rgb8", "scan_folder",
           "write_atomic"]

ORIENTATION = 0x0112
# TIFF tags describing the pixel layout of the source file: never copied into another file's EXIF
LAYOUT_TAGS = {254, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 322, 323, 324, 325,
               338, 339, 34675}
Image.MAX_IMAGE_PIXELS = None  # we check sizes ourselves against --max-pixels, with a clear message
Metadata = tuple[int, bytes | None, bytes | None, tuple[float, float] | None]  # orientation, ICC, EXIF, DPI


@dataclass
class Photo:
    """Decoded pixels plus what must be carried to the output.

    Attributes:
        color: HxWx3 (RGB) or HxWx1 (grayscale), uint8 or uint16.
        alpha: HxW transparency, same dtype as color.
        icc: ICC colour profile.
        exif: EXIF block, orientation already applied and reset to 1.
        dpi: (x, y) dots per inch.
        notes: conversions the user should know about.
    """

    color: np.ndarray
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.color.shape[1], self.color.shape[0]

    @property
    def max_value(self) -> float:
        """The white level of the pixels' dtype (255 or 65535)."""
        return 65535.0 if self.color.dtype == np.uint16 else 255.0


def scan_folder(folder: str | Path, suffixes: Collection[str] = READ_SUFFIXES) -> tuple[list[Path], int]:
    """The one folder walker: image files under `folder`, recursively, and how many other files it holds.

    Hidden files (names starting with '.', e.g. macOS `._photo.jpg` or our own `.part` files) are neither.

    Args:
        folder: the folder to walk.
        suffixes: lower-case suffixes of the files wanted (matched in any case).

    Returns:
        (the wanted files, sorted: the same order on every run; the number of other files).

    Raises:
        SrganError: `folder` is not a folder.
    """
    if not Path(folder).is_dir():
        raise SrganError(f"{folder}: not a folder")
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in suffixes]
    return images, len(files) - len(images)


def find_images(folder: str | Path, suffixes: Collection[str] = READ_SUFFIXES) -> list[Path]:
    """Image files under `folder`, recursively, any extension case, sorted (see `scan_folder`).

    Args:
        folder: the folder to walk.
        suffixes: lower-case suffixes of the files wanted.

    Raises:
        SrganError: `folder` is not a folder.
    """
    return scan_folder(folder, suffixes)[0]


def _rawmode(im: Image.Image) -> str:
    tile = getattr(im, "tile", None)  # the decoder's arguments (ImageFile only)
    args = tile[0].args if tile else ""
    return args if isinstance(args, str) else (args[0] if args else "")


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an HxW(xC) array."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
           7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.swapaxes(a, 0, 1)[::-1]}
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _read_16bit_png(path: Path) -> np.ndarray:
    """RGB(A) or gray+alpha PNG with 16 bits per channel, which Pillow would truncate to 8: pypng.

    Raises:
        SrganError: pypng refuses the file (e.g. a malformed ancillary chunk Pillow skips).
    """
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        array = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, info["planes"])
    except png.Error as err:
        raise SrganError(f"damaged image ({str(err).splitlines()[0][:160]})") from None
    return array.astype(np.uint16)


def _pillow_pixels(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Pillow image of any mode -> HxWxC array, C in 1/2/3/4 with alpha last."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[..., None]
    if mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None]
    if mode == "F":
        raise SrganError("32-bit floating-point images are not supported")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        notes.append("palette image converted to " + ("RGBA" if has_alpha else "RGB"))
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB (its CMYK colour profile is dropped)")
        im = im.convert("RGB")
    elif mode in ("La", "RGBa"):
        im = im.convert(mode[:-1] + "A")
    elif mode not in ("1", "L", "LA", "RGB", "RGBA"):
        notes.append(f"{mode} image converted to RGB")
        im = im.convert("RGB")
    array = np.asarray(im.convert("L") if im.mode == "1" else im)
    return array[..., None] if array.ndim == 2 else array


def _metadata(im: Image.Image) -> Metadata:
    """(EXIF orientation, ICC profile, EXIF with the orientation reset and layout tags dropped, DPI)."""
    exif = im.getexif()
    orientation = exif.get(ORIENTATION, 1)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    for tag in LAYOUT_TAGS & set(exif):
        del exif[tag]
    icc = None if im.mode == "CMYK" else (im.info.get("icc_profile") or None)
    dpi = im.info.get("dpi")
    return (orientation, icc, exif.tobytes() if len(exif) else None,
            (float(dpi[0]), float(dpi[1])) if dpi else None)


def _check_size(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise SrganError(f"{width}x{height} = {width * height:,} pixels is over --max-pixels {max_pixels:,}")


def _photo(pixels: np.ndarray, meta: Metadata, notes: list[str]) -> Photo:
    orientation, icc, exif, dpi = meta
    return photo_from_pixels(_orient(pixels, orientation), icc=icc, exif=exif, dpi=dpi, notes=notes)


def _decode(im: Image.Image, path: Path | None, max_pixels: int | None = None) -> Photo:
    """An opened Pillow image -> Photo (path: its file, for the 16-bit colour PNGs Pillow truncates)."""
    _check_size(*im.size, max_pixels)
    notes = []
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notes.append(f"first frame of {frames} used")
    sixteen_bit_png = im.format == "PNG" and im.mode in ("LA", "RGB", "RGBA") and ";16" in _rawmode(im)
    meta = _metadata(im)  # after the raw mode: reading a PNG's EXIF loads the pixels, and the decoder's mode is gone
    if path is not None and sixteen_bit_png:
        return _photo(_read_16bit_png(path), meta, notes)
    return _photo(_pillow_pixels(im, notes), meta, notes)


def _read_tiff(path: Path, layout: tiff.Layout, max_pixels: int | None) -> Photo:
    """A TIFF layout Pillow misreads, through tifffile; metadata from Pillow where it opens the file."""
    pixels, notes = tiff.read_pixels(path, layout, max_pixels)
    try:
        with Image.open(path) as im:
            meta = _metadata(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        orientation, icc, dpi = tiff.metadata(path)
        meta = (orientation, icc, None, dpi)
    return _photo(pixels, meta, notes)


def read_photo(path: str | Path, max_pixels: int | None = None) -> Photo:
    """Decode a photo file, EXIF rotation applied.

    Args:
        path: image file.
        max_pixels: refuse images with more pixels than this (decompression bombs).

    Returns:
        The pixels and the metadata to carry over.

    Raises:
        SrganError: unreadable, damaged, too large or unsupported.
    """
    path = Path(path)
    try:
        layout = tiff.layout_of(path) if tiff.is_tiff(path) else None
        if layout is not None and not layout.pillow_reads_it:
            return _read_tiff(path, layout, max_pixels)
        with Image.open(path) as im:
            return _decode(im, path, max_pixels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, zlib.error) as err:
        reason = "not an image" if isinstance(err, UnidentifiedImageError) else f"damaged image ({err})"
        raise SrganError(reason) from None


def photo_from_pixels(pixels: np.ndarray, icc: bytes | None = None, exif: bytes | None = None,
                      dpi: tuple[float, float] | None = None, notes: list[str] | None = None) -> Photo:
    """HxWxC array (C = 1, 2, 3 or 4; alpha last) -> Photo.

    Args:
        pixels: uint8 or uint16 pixels.
        icc, exif, dpi, notes: metadata, as the `Photo` fields.
    """
    alpha = None
    if pixels.shape[2] in (2, 4):
        pixels, alpha = np.ascontiguousarray(pixels[..., :-1]), np.ascontiguousarray(pixels[..., -1])
    return Photo(pixels, alpha, icc=icc, exif=exif, dpi=dpi, notes=notes if notes is not None else [])


def photo_from_image(image: Image.Image) -> Photo:
    """A PIL image (API use) -> Photo, as `read_photo` decodes files: EXIF orientation, ICC, EXIF, DPI.

    An image straight from `Image.open` (not yet loaded, first frame) is decoded from its file, exactly as the
    command line does (16-bit colour, every TIFF layout); other images from their pixels.

    Raises:
        SrganError: an unsupported mode (32-bit float) or file.
    """
    filename = getattr(image, "filename", "")
    if filename and getattr(image, "tile", None) and image.tell() == 0 and Path(filename).is_file():
        return read_photo(filename)
    try:
        return _decode(image, None)
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as err:
        raise SrganError(f"damaged image ({err})") from None


def read_rgb8(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB of a photo file: EXIF rotation applied, gray replicated, 16-bit rounded, alpha dropped.

    Raises:
        SrganError: as `read_photo`.
    """
    color = round_to_8bit(read_photo(path).color)
    return np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
