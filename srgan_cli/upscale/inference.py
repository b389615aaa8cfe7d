"""The Upscaler API: an SR ONNX model run on photos tile by tile, configured by one `UpscaleSettings`.

Shared by `srgan upscale`, `srgan evaluate` and Python callers:

    from srgan_cli.upscale.inference import Upscaler, UpscaleSettings
    Upscaler().upscale(image)                                   # the shipped model, PIL in and out
    Upscaler.from_settings(UpscaleSettings(model="srresnet_x4", tile=128))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.errors import UsageError
from srgan_cli.upscale.imaging import Photo, photo_from_image, photo_to_image
from srgan_cli.upscale.models import resolve_model
from srgan_cli.upscale.session import auto_tile, open_session, parse_device, read_contract, shrink_options
from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE, self_ensemble, upscale_tiled

ALPHA_MODES = ("bicubic", "model")
OnWindow = Callable[[int], object]  # progress hook: LR pixels done after each window


@dataclass(frozen=True)
class UpscaleSettings:
    """Everything that decides how photos are upscaled (the options `srgan upscale` and `srgan evaluate` share).

    Attributes:
        model: ONNX file, a shipped model's name ('srresnet_x4'), or None for the shipped default.
        device: 'auto', 'cpu', 'cuda' or 'cuda:N'.
        tile: kept tile side in LR pixels; 0 runs the whole image; None sizes it from free memory.
        tile_pad: context pixels on each side of a tile.
        tta: average the 8 flips/rotations (8x slower).
        alpha: 'bicubic' or 'model' upscaling of transparency.
        threads: CPU threads (None: the CPUs this process may use).
        scale, layout, value_range: the model contract, for models without srgan metadata.
        outscale: final scale by a Lanczos resize when it is not the model's (None: the model's).

    Raises:
        UsageError: on construction, a value that can never work (the model and its contract are checked when an
            Upscaler opens it).
    """

    model: str | Path | None = None
    device: str = "auto"
    tile: int | None = DEFAULT_TILE
    tile_pad: int = DEFAULT_PAD
    tta: bool = False
    alpha: str = "bicubic"
    threads: int | None = None
    scale: int | None = None
    layout: str | None = None
    value_range: str | None = None
    outscale: float | None = None

    def __post_init__(self) -> None:
        parse_device(self.device)
        if self.alpha not in ALPHA_MODES:
            raise UsageError(f"--alpha {self.alpha}: use bicubic or model")
        for name, least in (("tile", 0), ("tile_pad", 0), ("threads", 1), ("scale", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, numbers.Integral) or value < least):
                raise UsageError(f"--{name.replace('_', '-')} {value}: use a whole number >= {least}")
        if self.outscale is not None and not self.outscale > 0:
            raise UsageError(f"--outscale {self.outscale}: use a number > 0")


class Upscaler:
    """Runs an SR ONNX model on photos, tile by tile; holds no per-call state, so it is thread-safe.

    Build it from keywords (`Upscaler("model.onnx", device="cuda", tile=256)`: the `UpscaleSettings` fields, with
    `model_path` for `model`) or from settings (`Upscaler.from_settings(settings)`).

    Args:
        model_path: ONNX file or shipped model name (default: the shipped model).
        device, tile, tile_pad, tta, alpha, threads, scale, layout, value_range, outscale: as `UpscaleSettings`.

    Attributes:
        settings: what it was built with.
        device: the device actually used, 'cpu' or 'cuda:N'.
        contract: how the model is fed (input name, layout, value range, scale).
        tile: the kept tile side in LR pixels (sized from memory when the settings say None).

    Raises:
        UsageError: bad settings, or no model given and none shipped.
        SrganError: the model cannot be found, opened or understood, or the device is not usable.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "auto", tile: int | None = DEFAULT_TILE,
                 tile_pad: int = DEFAULT_PAD, tta: bool = False, alpha: str = "bicubic", threads: int | None = None,
                 scale: int | None = None, layout: str | None = None, value_range: str | None = None,
                 outscale: float | None = None) -> None:
        self.settings = UpscaleSettings(
            model=model_path, device=device, tile=tile, tile_pad=tile_pad, tta=tta, alpha=alpha, threads=threads,
            scale=scale, layout=layout, value_range=value_range, outscale=outscale)
        self.session, self.device = open_session(resolve_model(model_path), device, threads)
        self.contract = read_contract(self.session, scale, layout, value_range)
        self.tile = auto_tile(tile_pad) if tile is None else tile
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
        """float32 (h, w, 3) in [0,1] -> float32 (h*s, w*s, 3) in [0,1] through the model."""
        lo, hi = self.contract.value_range
        batch = window[None] * (hi - lo) + lo
        if self.contract.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        feed = {self.contract.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        out = self.session.run(None, feed, run_options)[0]
        if self.contract.layout == "NCHW":
            out = out.transpose(0, 2, 3, 1)
        return (out[0] - lo) / (hi - lo)

    def upscale_array(self, image: np.ndarray, out_dtype: type | np.dtype = np.float32, gray: bool = False,
                      on_window: OnWindow | None = None) -> np.ndarray:
        """Upscale an RGB array.

        Args:
            image: float32 HxWx3 in [0,1].
            out_dtype: dtype of the result; uint8/uint16 are rounded from [0,1], float dtypes are returned as is.
            gray: return HxWx1 luma (BT.601) instead of RGB.
            on_window: progress hook, called with the LR pixels done after each tile.

        Returns:
            (H*scale)x(W*scale)x(3 or 1) array in `out_dtype`.
        """
        run = self_ensemble(self.run_window) if self.settings.tta else self.run_window
        finish = _finisher(out_dtype, gray)
        return upscale_tiled(image, run, self.scale, self.tile, self.settings.tile_pad, finish=finish,
                             on_window=on_window)

    def upscale_photo(self, photo: Photo, on_window: OnWindow | None = None, *,
                      outscale: float | None = None) -> Photo:
        """Upscale a decoded Photo (any mode) -> Photo with the same mode, bit depth and metadata.

        Args:
            photo: the photo.
            on_window: progress hook, called with the LR pixels done after each tile.
            outscale: final scale (Lanczos resize) if not the model's; default: the settings' outscale.
        """
        outscale = outscale or self.settings.outscale
        top = photo.max_value
        rgb = photo.color.astype(np.float32) / top
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        if photo.alpha is not None:
            rgb = bleed_transparent(rgb, photo.alpha > 0)
        gray = photo.color.shape[2] == 1
        color = self.upscale_array(rgb, photo.color.dtype, gray, on_window)
        alpha = None if photo.alpha is None else self._upscale_alpha(photo.alpha, top)
        result = replace(photo, color=color, alpha=alpha, notes=list(photo.notes))
        self.release_memory()
        return resize_photo(result, outscale / self.scale) if outscale and outscale != self.scale else result

    def release_memory(self) -> None:
        """Give the arena's buffers back to the system (between images: keeps the peak of a batch low)."""
        if self.device == "cpu":
            self.run_window(np.zeros((4, 4, 3), np.float32), self._release)

    def _upscale_alpha(self, alpha: np.ndarray, top: float) -> np.ndarray:
        if self.settings.alpha == "model":
            plane = np.repeat(alpha.astype(np.float32)[..., None] / top, 3, axis=2)
            return self.upscale_array(plane, alpha.dtype, gray=True)[..., 0]
        height, width = alpha.shape
        return resize_plane(alpha, (width * self.scale, height * self.scale), Image.Resampling.BICUBIC)

    def upscale(self, image: Image.Image) -> Image.Image:
        """PIL.Image (L, LA, RGB, RGBA, P, CMYK, I;16) -> upscaled PIL.Image of the same kind."""
        return photo_to_image(self.upscale_photo(photo_from_image(image)))


def _finisher(out_dtype: type | np.dtype, gray: bool) -> Callable[[np.ndarray], np.ndarray]:
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


def resize_photo(photo: Photo, factor: float) -> Photo:
    """Final high-quality (Lanczos) resize of an upscaled photo by `factor`, for --outscale."""
    width, height = photo.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    color = np.stack([resize_plane(photo.color[..., c], size) for c in range(photo.color.shape[2])], axis=2)
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
