"""Photo I/O: every mode a user meets (gray, alpha, palette, CMYK, 16-bit), EXIF rotation, metadata, atomic writes."""

import io
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srgan_cli.errors import SrganError

READ_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
WRITE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF"}
ORIENTATION = 0x0112
# TIFF tags describing the pixel layout of the source file: never copied into another file's EXIF
LAYOUT_TAGS = {254, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 322, 323, 324, 325,
               338, 339, 34675}
Image.MAX_IMAGE_PIXELS = None  # we check sizes ourselves against --max-pixels, with a clear message
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: outputs get the usual permissions, not mkstemp's 0600


@dataclass
class Photo:
    """Decoded pixels plus what must be carried to the output.

    Attributes:
        color (np.ndarray): HxWx3 (RGB) or HxWx1 (grayscale), uint8 or uint16.
        alpha (np.ndarray | None): HxW transparency, same dtype as color.
        icc (bytes | None): ICC colour profile.
        exif (bytes | None): EXIF block, orientation already applied and reset to 1.
        dpi (tuple | None): (x, y) dots per inch.
        notes (list): conversions the user should know about.
    """

    color: np.ndarray
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple | None = None
    notes: list = field(default_factory=list)

    @property
    def size(self):
        """(width, height)."""
        return self.color.shape[1], self.color.shape[0]

    @property
    def max_value(self):
        return 65535.0 if self.color.dtype == np.uint16 else 255.0


def find_images(folder, suffixes=READ_SUFFIXES):
    """Image files under `folder`, recursively, any extension case, sorted (the same order on every run)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _rawmode(im):
    args = im.tile[0].args if im.tile else ""
    return args if isinstance(args, str) else (args[0] if args else "")


def _orient(array, orientation):
    """Apply an EXIF orientation (1-8) to an HxW(xC) array."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
           7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.swapaxes(a, 0, 1)[::-1]}
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _read_16bit_color(path, im):
    """RGB(A) with 16 bits per channel, which Pillow would truncate to 8: tifffile or pypng."""
    if im.format == "TIFF":
        import tifffile
        array = tifffile.imread(path, key=0)
    else:
        import png
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        array = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, info["planes"])
    return array.astype(np.uint16)


def _pillow_pixels(im, notes):
    """Pillow image of any mode -> (HxWxC array, C in 1/2/3/4 with alpha last)."""
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
    elif mode in ("1", "L", "LA", "RGB", "RGBA"):
        pass
    elif mode in ("La", "RGBa"):
        im = im.convert(mode[:-1] + "A")
    else:
        notes.append(f"{mode} image converted to RGB")
        im = im.convert("RGB")
    array = np.asarray(im.convert("L") if im.mode == "1" else im)
    return array[..., None] if array.ndim == 2 else array


def _metadata(im, photo_notes):
    exif = im.getexif()
    orientation = exif.get(ORIENTATION, 1)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    for tag in LAYOUT_TAGS & set(exif):
        del exif[tag]
    icc = im.info.get("icc_profile") or None
    if im.mode == "CMYK":
        icc = None
    dpi = im.info.get("dpi")
    return orientation, dict(icc=icc, exif=exif.tobytes() if len(exif) else None,
                             dpi=tuple(float(d) for d in dpi) if dpi else None, notes=photo_notes)


def read_photo(path, max_pixels=None):
    """Decode a photo file, EXIF rotation applied.

    Args:
        path (str | Path): image file.
        max_pixels (int | None): refuse images with more pixels than this (decompression bombs).

    Returns:
        Photo: pixels and metadata.

    Raises:
        SrganError: unreadable, damaged, too large or unsupported.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            width, height = im.size
            if max_pixels and width * height > max_pixels:
                raise SrganError(f"{width}x{height} = {width * height:,} pixels is over --max-pixels {max_pixels:,}")
            notes = []
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"first frame of {im.n_frames} used")
            sixteen_bit_color = im.mode in ("LA", "RGB", "RGBA") and ";16" in _rawmode(im)
            orientation, meta = _metadata(im, notes)
            if sixteen_bit_color:
                pixels = _read_16bit_color(path, im)
            else:
                pixels = _pillow_pixels(im, notes)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, zlib.error) as err:
        reason = "not an image" if isinstance(err, UnidentifiedImageError) else f"damaged image ({err})"
        raise SrganError(reason) from None
    return photo_from_pixels(_orient(pixels, orientation), **meta)


def photo_from_pixels(pixels, **meta):
    """HxWxC array (C = 1, 2, 3 or 4; alpha last) -> Photo."""
    if pixels.shape[2] in (2, 4):
        return Photo(np.ascontiguousarray(pixels[..., :-1]), np.ascontiguousarray(pixels[..., -1]), **meta)
    return Photo(pixels, **meta)


def photo_from_image(image):
    """An in-memory PIL image (API use) -> Photo, with the same mode handling as files."""
    notes = []
    return photo_from_pixels(_pillow_pixels(image, notes), icc=image.info.get("icc_profile"), notes=notes)


def photo_to_image(photo):
    """Photo -> PIL image (16-bit grayscale as mode I;16; 16-bit colour is reduced to 8 bits by Pillow's limits)."""
    if photo.color.dtype == np.uint16 and photo.color.shape[2] == 1 and photo.alpha is None:
        return Image.fromarray(photo.color[..., 0])
    return _pillow_image(_stack(_to_8bit(photo, [])))


def output_format(path, requested=None):
    """Pillow format name from --format or the output file's extension."""
    key = (requested or Path(path).suffix.lstrip(".")).lower()
    if key not in WRITE_FORMATS:
        raise SrganError(f"{path}: cannot write '{key}' images: use png, jpg, webp or tiff")
    return WRITE_FORMATS[key]


def _stack(photo):
    return photo.color if photo.alpha is None else np.concatenate([photo.color, photo.alpha[..., None]], axis=2)


def _to_8bit(photo, notes):
    if photo.color.dtype != np.uint16:
        return photo
    notes.append("16-bit image written as 8-bit (the format has no 16-bit mode)")
    alpha = None if photo.alpha is None else _round_to_8bit(photo.alpha)
    return Photo(_round_to_8bit(photo.color), alpha, photo.icc, photo.exif, photo.dpi, photo.notes)


def _round_to_8bit(pixels):
    return pixels if pixels.dtype == np.uint8 else np.round(pixels / 257.0).astype(np.uint8)


def read_rgb8(path):
    """HxWx3 uint8 RGB of a photo file: EXIF rotation applied, gray replicated, 16-bit rounded, alpha dropped."""
    color = _round_to_8bit(read_photo(path).color)
    return np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color


def _flatten_alpha(photo, notes):
    notes.append("alpha composited on white (JPEG has no transparency)")
    top = photo.max_value
    a = photo.alpha.astype(np.float32)[..., None] / top
    color = photo.color.astype(np.float32) * a + top * (1.0 - a)
    return Photo(np.round(color).astype(photo.color.dtype), None, photo.icc, photo.exif, photo.dpi, photo.notes)


def _pillow_image(array):
    if array.shape[2] == 1:
        return Image.fromarray(array[..., 0])
    return Image.fromarray(array, mode={2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])


def _png_chunks_16bit(photo, buffer):
    """16-bit RGB(A) PNG via pypng, with iCCP/eXIf/pHYs chunks added after IHDR."""
    import png
    array = _stack(photo)
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
    png.write_chunks(buffer, chunks[:1] + extra + chunks[1:])


def _tiff_16bit(photo, buffer):
    import tifffile
    array = _stack(photo)
    extrasamples = ["unassalpha"] if photo.alpha is not None else None
    tifffile.imwrite(buffer, array if array.shape[2] > 1 else array[..., 0],
                     photometric="rgb" if array.shape[2] >= 3 else "minisblack", extrasamples=extrasamples,
                     iccprofile=photo.icc, resolution=photo.dpi, resolutionunit="INCH" if photo.dpi else None)


def encode_photo(photo, fmt, quality=95):
    """Encode to bytes in Pillow format `fmt`; returns (bytes, notes about lossy conversions)."""
    notes, buffer = [], io.BytesIO()
    if fmt in ("JPEG", "WEBP"):
        photo = _to_8bit(photo, notes)
    if fmt == "JPEG" and photo.alpha is not None:
        photo = _flatten_alpha(photo, notes)
    sixteen = photo.color.dtype == np.uint16
    if sixteen and fmt == "TIFF":
        _tiff_16bit(photo, buffer)
    elif sixteen and (photo.color.shape[2] == 3 or photo.alpha is not None):
        _png_chunks_16bit(photo, buffer)
    else:
        options = {k: v for k, v in (("icc_profile", photo.icc), ("exif", photo.exif), ("dpi", photo.dpi)) if v}
        if fmt in ("JPEG", "WEBP"):
            options["quality"] = quality
        image = photo_to_image(photo)
        image.save(buffer, format=fmt, **options)
    return buffer.getvalue(), notes


def write_atomic(data, path):
    """Write bytes to `path` through a temporary file in the same folder and a rename: never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
