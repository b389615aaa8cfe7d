"""TIFF layouts Pillow misreads or cannot open (planar, 16-bit colour, min-is-white, extra samples), decoded with
tifffile into the HxWxC arrays of the rest of the upscale side, or refused in one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
MINISWHITE, MINISBLACK, RGB = 0, 1, 2
ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA = 1, 2
COLOUR_CHANNELS = {MINISWHITE: 1, MINISBLACK: 1, RGB: 3}
UNSIGNED, SIGNED, FLOAT = 1, 2, 3
ORIENTATION_TAG = 274


@dataclass(frozen=True)
class Layout:
    """How the first image of a TIFF file stores its pixels (tifffile's view of its tags)."""

    photometric: int
    samples: int
    bits: int
    sample_format: int
    extra_samples: tuple[int, ...]
    planar: bool
    pages: int

    @property
    def pillow_reads_it(self) -> bool:
        """Pillow decodes this layout exactly (8 bits or fewer, unsigned, at most one alpha sample)."""
        return (self.sample_format == UNSIGNED and self.bits <= 8
                and self.extra_samples in ((), (ASSOCIATED_ALPHA,), (UNASSOCIATED_ALPHA,)))


def is_tiff(path: Path) -> bool:
    """The file starts with a TIFF or BigTIFF signature."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in TIFF_MAGIC
    except OSError:
        return False


def layout_of(path: Path) -> Layout | None:
    """The layout of a TIFF file's first image, or None when tifffile cannot parse it (Pillow then decides)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page: Any = tif.pages[0]
            return Layout(int(page.photometric), int(page.samplesperpixel), int(page.bitspersample),
                          int(page.sampleformat), tuple(int(e) for e in page.extrasamples),
                          int(page.planarconfig) == 2 and page.samplesperpixel > 1, len(tif.pages))
    except Exception:
        return None


def _check_samples(array: np.ndarray, layout: Layout) -> np.ndarray:
    """Unsigned 8- or 16-bit samples (1-bit as 0/255), or SrganError naming what they are."""
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if layout.sample_format == FLOAT or np.issubdtype(array.dtype, np.floating):
        raise SrganError(f"{layout.bits}-bit floating-point TIFF samples are not supported (8 or 16-bit integers)")
    if layout.sample_format == SIGNED or np.issubdtype(array.dtype, np.signedinteger):
        raise SrganError(f"signed {layout.bits}-bit TIFF samples are not supported (unsigned 8 or 16-bit only)")
    if array.dtype not in (np.uint8, np.uint16):
        raise SrganError(f"{layout.bits}-bit TIFF samples are not supported (8 or 16-bit only)")
    return array


def _to_hwc(array: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's array of one page (axes such as 'YX', 'YXS', 'SYX') -> HxWxC."""
    if "S" in axes:
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    else:
        array, axes = array[..., None], axes + "S"
    while array.ndim > 3:  # leading axes of size 1 (a single plane of a volume, say)
        array, axes = array[0], axes[1:]
    return array


def _unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    top = float(np.iinfo(colour.dtype).max)
    a = alpha.astype(np.float32)[..., None]
    straight = np.where(a > 0, colour.astype(np.float32) * top / np.maximum(a, 1), 0)
    return np.clip(np.round(straight), 0, top).astype(colour.dtype)


def _arrange(array: np.ndarray, layout: Layout, notes: list[str]) -> np.ndarray:
    """HxWxS samples -> HxWxC pixels: colour (min-is-white inverted), then the alpha if there is one."""
    if layout.photometric not in COLOUR_CHANNELS:
        raise SrganError(f"{layout.bits}-bit TIFF with photometric interpretation {layout.photometric} "
                         "(palette, CMYK, YCbCr, Lab) is not supported: use 8-bit, gray or RGB")
    channels = COLOUR_CHANNELS[layout.photometric]
    colour, extras = array[..., :channels], array[..., channels:]
    if layout.photometric == MINISWHITE:
        colour = np.iinfo(colour.dtype).max - colour
    kinds = layout.extra_samples + (0,) * (extras.shape[2] - len(layout.extra_samples))
    if extras.shape[2] and kinds[0] in (ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA):
        alpha, extras = extras[..., 0], extras[..., 1:]
        colour = _unpremultiply(colour, alpha) if kinds[0] == ASSOCIATED_ALPHA else colour
        colour = np.dstack([colour, alpha])
    if extras.shape[2]:
        notes.append(f"{extras.shape[2]} extra TIFF channel(s) dropped")
    return np.ascontiguousarray(colour)


def read_pixels(path: Path, layout: Layout, max_pixels: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Decode the first image of a TIFF file with tifffile.

    Args:
        path: the file.
        layout: from `layout_of`.
        max_pixels: refuse larger images.

    Returns:
        (HxWxC uint8 or uint16 pixels with C in 1-4 and alpha last, notes).

    Raises:
        SrganError: a layout srgan cannot use, too many pixels, or a compression tifffile cannot decode.
    """
    import tifffile

    notes = [f"first image of {layout.pages} used"] if layout.pages > 1 else []
    with tifffile.TiffFile(path) as tif:
        page: Any = tif.pages[0]
        height, width = int(page.imagelength), int(page.imagewidth)
        if max_pixels and width * height > max_pixels:
            raise SrganError(f"{width}x{height} = {width * height:,} pixels is over --max-pixels {max_pixels:,}")
        try:
            array = page.asarray()
        except Exception as err:
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise SrganError(f"cannot decode this TIFF ({reason}; pip install imagecodecs adds compressions)") from None
        array = _check_samples(_to_hwc(array, page.axes), layout)
    return _arrange(array, layout, notes), notes


def metadata(path: Path) -> tuple[int, bytes | None, tuple[float, float] | None]:
    """(EXIF orientation, ICC profile, DPI) from the first image's tags, for files Pillow cannot open."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page: Any = tif.pages[0]
        tag = page.tags.get(ORIENTATION_TAG)
        orientation = int(tag.value) if tag is not None else 1
        icc = page.iccprofile or None
        dpi = None
        if int(page.resolutionunit) == 2 and all(page.resolution):  # inches
            dpi = (float(page.resolution[0]), float(page.resolution[1]))
    return orientation, icc, dpi
