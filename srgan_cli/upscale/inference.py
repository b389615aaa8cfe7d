"""The Upscaler API: an SR ONNX model run on photos tile by tile, configured by one `UpscaleSettings`.

Shared by `srgan upscale`, `srgan evaluate` and Python callers, with the command line's behaviour and errors:

    from srgan_cli.upscale.inference import Upscaler, UpscaleSettings
    Upscaler().upscale(image)                    # the shipped model; PIL in and out, or a numpy array in and out
    Upscaler().upscale_file("scan.tif", "big.tif")   # exactly what `srgan upscale` does to a file
    Upscaler.from_settings(UpscaleSettings(model="srresnet_x4", tile=128))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import files, formats, imaging, interop
from srgan_cli.upscale.consistency import consistency_passes, consistent
from srgan_cli.upscale.contract import check_result, read_contract
from srgan_cli.upscale.degrid import degrid_sigma, degridded
from srgan_cli.upscale.imaging import Photo
from srgan_cli.upscale.pixels import bleed_transparent, finisher, pad_to_min, resize_photo, resize_plane
from srgan_cli.upscale.precision import check_precision, open_model
from srgan_cli.upscale.session import (
    auto_tile,
    is_out_of_memory,
    measured_available_memory,
    parse_device,
    shrink_options,
    tile_budget,
)
from srgan_cli.upscale.tiling import TileOutOfMemory, default_pad, default_tile, self_ensemble, upscale_retrying

__all__ = ["Upscaler", "UpscaleSettings", "bleed_transparent", "resize_photo", "resize_plane"]

ALPHA_MODES = ("bicubic", "model")
OnWindow = Callable[[int], object]  # progress hook: LR pixels done after each window


@dataclass(frozen=True)
class UpscaleSettings:
    """Everything that decides how photos are upscaled (the options `srgan upscale` and `srgan evaluate` share).

    Attributes:
        model: ONNX file, a shipped model's name ('srresnet_x4'), or None for the shipped default.
        device: 'auto', 'cpu', 'cuda' or 'cuda:N'.
        tile: kept tile side in LR pixels; 0 runs the whole image; None sizes it from free memory; 'default':
            256, or 400 for int8 on the CPU (the same memory, see `tiling.default_tile`).
        tile_pad: context pixels on each side of a tile; None: 16, or 40 for int8 (`tiling.default_pad`).
        tta: average the 8 flips/rotations (8x slower).
        alpha: 'bicubic' or 'model' upscaling of transparency.
        threads: CPU threads (None: the CPUs this process may use).
        scale, layout, value_range: the model contract, for models without srgan metadata.
        outscale: final scale by a Lanczos resize when it is not the model's (None: the model's).
        precision: 'fp32' (the model file itself), 'int8', 'fp16' (`<stem>_int8.onnx`, `<stem>_fp16.onnx` beside it)
            or 'auto' (see `srgan_cli.upscale.precision`).
        degrid: take the LR-grid pattern out of each result (`srgan_cli.upscale.degrid`); None: when the model's
            metadata asks for it.
        consistency: project each result back onto its LR where the LR looks undamaged
            (`srgan_cli.upscale.consistency`); None: when the model's metadata asks for it.

    Raises:
        UsageError: on construction, a value that can never work (the model and its contract are checked when an
            Upscaler opens it).
    """

    model: str | Path | None = None
    device: str = "auto"
    tile: int | Literal["default"] | None = "default"
    tile_pad: int | None = None
    tta: bool = False
    alpha: str = "bicubic"
    threads: int | None = None
    scale: int | None = None
    layout: str | None = None
    value_range: str | None = None
    outscale: float | None = None
    precision: str = "fp32"
    degrid: bool | None = None
    consistency: bool | None = None

    def __post_init__(self) -> None:
        parse_device(self.device)
        check_precision(self.precision)
        if self.alpha not in ALPHA_MODES:
            raise UsageError(f"--alpha {self.alpha}: use bicubic or model")
        for name, least in (("tile", 0), ("tile_pad", 0), ("threads", 1), ("scale", 2)):
            value = getattr(self, name)
            if name == "tile" and value == "default":
                continue
            if value is not None and (not isinstance(value, numbers.Integral) or value < least):
                why = ": the output would be as large as the input" if name == "scale" and value == 1 else ""
                raise UsageError(f"--{name.replace('_', '-')} {value}: use a whole number >= {least}{why}")
        if self.outscale is not None and not self.outscale > 0:
            raise UsageError(f"--outscale {self.outscale}: use a number > 0")


class Upscaler:
    """Runs an SR ONNX model on photos, tile by tile; holds no per-call state, so it is thread-safe.

    Build it from keywords (`Upscaler("model.onnx", device="cuda", tile=256)`: the `UpscaleSettings` fields, with
    `model_path` for `model`) or from settings (`Upscaler.from_settings(settings)`).

    Args:
        model_path: ONNX file or shipped model name (default: the shipped model).
        device, tile, tile_pad, tta, alpha, threads, scale, layout, value_range, outscale, precision, degrid,
            consistency: as `UpscaleSettings`.

    Attributes:
        settings: what it was built with.
        device: the device actually used, 'cpu' or 'cuda:N'.
        precision: the `precision.Choice` made: which file runs and why.
        contract: how the model is fed (input name, layout, value range, scale).
        tile: the kept tile side in LR pixels (sized from memory when the settings say None; 0: whole image).
        tile_pad: the context pixels per tile side (by precision when the settings say None).
        tile_note: with the settings' tile None, one line saying what was picked and why (else empty).
        degrid_sigma: the grid suppression applied, in LR pixels (0.0: none).
        consistency_passes: the back-projection passes applied (0: none).

    Raises:
        UsageError: bad settings, or no model given and none shipped.
        SrganError: the model cannot be found, opened or understood, or the device is not usable.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "auto",
                 tile: int | Literal["default"] | None = "default",
                 tile_pad: int | None = None, tta: bool = False, alpha: str = "bicubic", threads: int | None = None,
                 scale: int | None = None, layout: str | None = None, value_range: str | None = None,
                 outscale: float | None = None, precision: str = "fp32", degrid: bool | None = None,
                 consistency: bool | None = None) -> None:
        self.settings = UpscaleSettings(
            model=model_path, device=device, tile=tile, tile_pad=tile_pad, tta=tta, alpha=alpha, threads=threads,
            scale=scale, layout=layout, value_range=value_range, outscale=outscale, precision=precision,
            degrid=degrid, consistency=consistency)
        self.session, self.device, self.precision = open_model(model_path, device, threads, precision)
        self.contract = read_contract(self.session, scale, layout, value_range)
        self.degrid_sigma = degrid_sigma(self.session, degrid)
        self.consistency_passes = consistency_passes(self.session, consistency)
        self.tile_pad = default_pad(self.precision.precision) if tile_pad is None else tile_pad
        self.tile_note = ""
        if tile is not None:
            self.tile = default_tile(self.precision.precision, self.device) if tile == "default" else tile
        else:
            budget, source = tile_budget(self.device)
            self.tile = auto_tile(self.tile_pad, budget, self.precision.precision)
            window = self.tile + 2 * self.tile_pad
            self.tile_note = f"tile: auto -> {self.tile} LR px (windows of {window} px; {source})"
        self._release = shrink_options()

    @classmethod
    def from_settings(cls, settings: UpscaleSettings) -> Upscaler:
        """An Upscaler built from `settings` (the same as passing each field as a keyword)."""
        keywords = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "model"}
        return cls(settings.model, **keywords)

    @property
    def scale(self) -> int:
        """The model's scale (output side / input side)."""
        return self.contract.scale

    def run_window(self, window: np.ndarray, run_options: object = None) -> np.ndarray:
        """float32 (h, w, 3) in [0,1] -> float32 (h*s, w*s, 3) in [0,1] through the model.

        Raises:
            TileOutOfMemory: the model ran out of memory on this window.
            SrganError: the model failed, or returned what no image is (see `contract.check_result`).
        """
        try:
            out = self.session.run(None, self.contract.feed(window[None]), run_options)[0]
        except Exception as err:
            height, width = window.shape[:2]
            if is_out_of_memory(err):
                raise TileOutOfMemory(max(width, height)) from None
            raise SrganError(f"the model failed on a {width}x{height} window ({_first_line(err)})") from None
        return self.contract.unfeed(check_result(out, window.shape[:2], self.contract))[0]

    def upscale_array(self, image: np.ndarray, out_dtype: type | np.dtype = np.float32, gray: bool = False,
                      on_window: OnWindow | None = None, notes: list[str] | None = None, *,
                      degrid: bool = True) -> np.ndarray:
        """Upscale an RGB array; out of memory, retry with half the tile (down to 16 px) before giving up.

        Args:
            image: float32 HxWx3 in [0,1]; sides under 32 px are mirrored out for the model and cropped after.
            out_dtype: dtype of the result; uint8/uint16 are rounded from [0,1], float dtypes are returned as is.
            gray: return HxWx1 luma (BT.601) instead of RGB.
            on_window: progress hook, called with the LR pixels done after each tile.
            notes: receives a line when the tile had to shrink.
            degrid: False skips the grid suppression and the back-projection the settings or the model ask for
                (an alpha plane: its hard edges on the grid are real, and it has no JPEG or noise to tell apart).

        Returns:
            (H*scale)x(W*scale)x(3 or 1) array in `out_dtype`.

        Raises:
            SrganError: the model fails, returns no image, or runs out of memory even on 16-px tiles.
        """
        padded, (top, left) = pad_to_min(image)
        refine = (self.degrid_sigma, self.consistency_passes) if degrid else (0.0, 0)
        if padded is image:
            return self._tiled(image, out_dtype, gray, on_window, notes, refine)
        out = self._tiled(padded, out_dtype, gray, None, notes, refine)
        height, width, s = image.shape[0], image.shape[1], self.scale
        if on_window:
            on_window(height * width)
        return np.ascontiguousarray(out[top * s:(top + height) * s, left * s:(left + width) * s])

    def _tiled(self, image: np.ndarray, out_dtype: type | np.dtype, gray: bool, on_window: OnWindow | None,
               notes: list[str] | None, refine: tuple[float, int]) -> np.ndarray:
        """`refine`: the degrid sigma and the back-projection passes for each window's result (0: none)."""
        run = self_ensemble(self.run_window) if self.settings.tta else self.run_window
        sigma, passes = refine
        if sigma:
            run = degridded(run, self.scale, sigma)
        if passes:
            run = consistent(run, self.scale, passes)
        try:
            return upscale_retrying(image, run, self.scale, self.tile, self.tile_pad,
                                    finish=finisher(out_dtype, gray), on_window=on_window, notes=notes)
        except TileOutOfMemory as err:
            where = "" if self.device == "cpu" else f" on {self.device} (try --device cpu)"
            raise SrganError(f"out of memory running the model{where}, even on {err.tile}-px tiles") from None

    def upscale_photo(self, photo: Photo, on_window: OnWindow | None = None, *,
                      outscale: float | None = None) -> Photo:
        """Upscale a decoded Photo (any mode) -> Photo with the same mode, bit depth and metadata.

        Args:
            photo: the photo.
            on_window: progress hook, called with the LR pixels done after each tile.
            outscale: final scale (Lanczos resize) if not the model's; default: the settings' outscale.

        Raises:
            SrganError: as `upscale_array`, or the result does not fit in memory.
        """
        outscale = outscale or self.settings.outscale
        self._check_fits(photo, outscale or self.scale)
        top, notes = photo.max_value, list(photo.notes)
        rgb = photo.color.astype(np.float32) / top
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        if photo.alpha is not None:
            rgb = bleed_transparent(rgb, photo.alpha > 0)
        try:
            color = self.upscale_array(rgb, photo.color.dtype, photo.color.shape[2] == 1, on_window, notes)
            alpha = None if photo.alpha is None else self._upscale_alpha(photo.alpha, top, notes)
            result = replace(photo, color=color, alpha=alpha, notes=notes)
            self.release_memory()
            return resize_photo(result, outscale / self.scale) if outscale and outscale != self.scale else result
        except MemoryError:
            raise SrganError(_too_big(photo, outscale or self.scale)) from None

    def _check_fits(self, photo: Photo, final_scale: float) -> None:
        """Refuse, before any work, a result that cannot fit in this machine's free memory (e.g. a huge --outscale),
        rather than let the system's out-of-memory killer end the process.

        Raises:
            SrganError: it cannot fit.
        """
        width, height = photo.size
        planes = photo.color.shape[2] + (photo.alpha is not None)
        model_bytes = self.scale * self.scale * width * height * planes * photo.color.itemsize
        final_bytes = 0 if final_scale == self.scale else \
            final_scale * final_scale * width * height * (planes * photo.color.itemsize + 8)  # + the float planes
        available = measured_available_memory()  # where the system does not say, nothing is refused
        if available is not None and model_bytes + final_bytes > available:
            raise SrganError(f"out of memory: the {width}x{height} photo upscaled to {final_scale:g}x needs about "
                             f"{(model_bytes + final_bytes) / 1e9:.1f} GB, more than the {available / 1e9:.1f} GB "
                             "of memory free")

    def release_memory(self) -> None:
        """Give the arena's buffers back to the system (between images: keeps the peak of a batch low)."""
        if self.device == "cpu":
            self.run_window(np.zeros((4, 4, 3), np.float32), self._release)

    def _upscale_alpha(self, alpha: np.ndarray, top: float, notes: list[str]) -> np.ndarray:
        if self.settings.alpha == "model":
            plane = np.repeat(alpha.astype(np.float32)[..., None] / top, 3, axis=2)
            return self.upscale_array(plane, alpha.dtype, gray=True, notes=notes, degrid=False)[..., 0]
        height, width = alpha.shape
        return resize_plane(alpha, (width * self.scale, height * self.scale), Image.Resampling.BICUBIC)

    def upscale(self, image: Image.Image | np.ndarray, *, outscale: float | None = None) -> Image.Image | np.ndarray:
        """Upscale a PIL image or a numpy array as `srgan upscale` does a file; the result is of the same kind.

        PIL: any mode (L, LA, RGB, RGBA, P, CMYK, I;16); an image straight from `Image.open` is decoded from its file
        like the command line does it (EXIF orientation applied, 16-bit PNG/TIFF, every TIFF layout). ICC profile,
        EXIF and DPI come back in the result's `.info`. PIL has no 16-bit colour mode: for 16-bit colour pass an
        array or use `upscale_file`.
        numpy: HxW or HxWxC (C 1-4, alpha last) of uint8, uint16 (kept) or floats in [0, 1].

        Args:
            image: the picture.
            outscale: final scale if not the model's (default: the settings' outscale).

        Raises:
            SrganError: what the command line reports for a file, in the same one line.
        """
        photo, back = interop.photo_from_input(image)
        return back(self.upscale_photo(photo, outscale=outscale))

    def upscale_file(self, source: str | Path, target: str | Path, *, fmt: str | None = None, quality: int = 95,
                     overwrite: bool = False) -> list[str]:
        """Upscale one image file into another exactly as `srgan upscale SOURCE -o TARGET` does.

        Args:
            source: the image file.
            target: the file to write; its suffix (or `fmt`) picks the format.
            fmt: a `--format` value.
            quality: JPEG/WebP quality.
            overwrite: replace an existing `target`.

        Returns:
            The notes about the conversions made (the command line prints them as 'note:' lines).

        Raises:
            SrganError: the source cannot be read or upscaled, or the target exists or cannot be written.
        """
        result = self.upscale_photo(imaging.read_photo(source))
        data, notes = formats.encode_photo(result, formats.output_format(target, fmt), quality)
        try:
            files.write_atomic(data, target, overwrite=overwrite)
        except FileExistsError:
            raise SrganError(f"{target}: output exists (pass overwrite=True)") from None
        except OSError as err:
            raise SrganError(f"cannot write {target}: {err.strerror or err}") from None
        return result.notes + notes


def _too_big(photo: Photo, final_scale: float) -> str:
    """'out of memory: the WxH photo upscaled is N megapixels, about G GB'."""
    width, height = photo.size
    final = final_scale * final_scale * width * height
    return (f"out of memory: the {width}x{height} photo upscaled is {final / 1e6:,.0f} megapixels, "
            f"about {final * 4 * photo.color.itemsize / 1e9:.1f} GB")


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
