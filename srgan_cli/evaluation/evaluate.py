"""`srgan evaluate`'s protocol: the standard x4 SR protocol (bicubic LR, Y-channel PSNR/SSIM and artifact scores
with a 4 px border) with bicubic beside every model, the LR optionally damaged (`--degrade`), NIQE on request.

One pass per folder: each HR image is loaded once, then for each degradation spec its LR is made (damage seeded by
the image name: the same on every run), upscaled by bicubic and every model, and scored against the HR.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation.degradations import Step, apply_spec, parse_spec
from srgan_cli.evaluation.metrics import SSIM_WINDOW, colour_shift, edge_overshoot, grid_db, mod_crop, psnr_y, ssim_y
from srgan_cli.evaluation.report import ORIGINAL, ImageResult, Score, folder_report, mean_result, to_json, write_json
from srgan_cli.upscale import formats, imaging

if TYPE_CHECKING:
    from srgan_cli.upscale.inference import Upscaler

__all__ = ["BICUBIC", "CLEAN", "ORIGINAL", "ImageResult", "Score", "TooSmall", "Unreadable", "bicubic_upscale",
           "check_folders", "damaged_lr", "degrade", "evaluate_folder", "folder_report", "load_hr", "mean_result",
           "method_names", "parse_damage", "score", "side_by_side", "to_json", "write_json"]

BICUBIC = "bicubic"  # the baseline method, scored beside every model
CLEAN = "clean"  # the degradation spec of the undamaged protocol (the default)
Damage = Mapping[str, tuple[Step, ...]]  # spec text -> parsed steps (CLEAN -> ())


class TooSmall(SrganError):
    """An HR image too small to score (skipped with a note, unless no image of the folder is big enough)."""


class Unreadable(SrganError):
    """An HR image that cannot be read (skipped with a note, unless no image of the folder can be scored)."""


def load_hr(path: str | Path, scale: int, border: int = 4) -> np.ndarray:
    """HR image as 8-bit RGB (grayscale replicated), cropped to multiples of the scale; big enough to score.

    Raises:
        TooSmall: too small to score (naming the file).
        Unreadable: not an image, damaged or unsupported (naming the file).
    """
    try:
        hr = mod_crop(imaging.read_rgb8(path), scale)
    except SrganError as err:
        raise Unreadable(f"{path}: {err}") from None
    least = 2 * border + SSIM_WINDOW
    if min(hr.shape[:2]) < least:
        raise TooSmall(f"{path}: {hr.shape[1]}x{hr.shape[0]} after cropping to multiples of {scale} is too small "
                         f"to score (SSIM needs {least}x{least} pixels with a {border} px border)")
    return hr


def degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR by Pillow's bicubic (matches MATLAB imresize to ~0.01 dB), as the protocol prescribes."""
    size = (hr.shape[1] // scale, hr.shape[0] // scale)
    return np.asarray(Image.fromarray(hr).resize(size, Image.Resampling.BICUBIC))


def damaged_lr(hr: np.ndarray, scale: int, steps: tuple[Step, ...] = (), name: str = "") -> np.ndarray:
    """The protocol's bicubic LR, then the `--degrade` steps, seeded by the image name (the same damage every run)."""
    lr = degrade(hr, scale)
    return apply_spec(lr, steps, zlib.crc32(name.encode())) if steps else lr


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: Pillow's bicubic enlargement by `scale`."""
    size = (lr.shape[1] * scale, lr.shape[0] * scale)
    return np.asarray(Image.fromarray(lr).resize(size, Image.Resampling.BICUBIC))


def parse_damage(specs: Sequence[str] = ()) -> dict[str, tuple[Step, ...]]:
    """`--degrade` values -> {spec: steps}, in the order given, each once; none given: clean only.

    Args:
        specs: 'clean' (no damage) or a spec of `degradations.parse_spec` ('jpeg:75', 'noise:6,jpeg:75').

    Raises:
        UsageError: a malformed spec (one line quoting it and stating the grammar).
    """
    damage: dict[str, tuple[Step, ...]] = {}
    for spec in specs or [CLEAN]:
        key = re.sub(r"\s+", "", spec)
        damage[key] = () if key == CLEAN else parse_spec(key)
    return damage


def side_by_side(images: Sequence[np.ndarray], hr: np.ndarray, path: Path, crop: int = 160) -> None:
    """Centre crops of (bicubic, models..., original) next to each other, written as a PNG."""
    h, w = hr.shape[:2]
    size = min(crop, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    strip = np.concatenate([img[y:y + size, x:x + size] for img in [*images, hr]], axis=1)
    _write(formats.encode_photo(imaging.Photo(strip), "png")[0], path)


def _write(data: bytes, path: str | Path) -> None:
    try:
        imaging.write_atomic(data, path)
    except OSError as err:
        raise SrganError(f"cannot write {path}: {err.strerror or err}") from None


def _niqe(image: np.ndarray, border: int) -> float:
    """NIQE with the protocol's border, nan for an image too small (or too flat) for it."""
    from srgan_cli.evaluation.niqe import niqe

    try:
        return niqe(image, border=border)
    except SrganError:
        return math.nan


def score(sr: np.ndarray, hr: np.ndarray, scale: int, border: int, with_niqe: bool = False) -> Score:
    """Every score of one 8-bit output against its HR image.

    Args:
        sr, hr: 8-bit RGB of the same size.
        scale: the upscaling factor (the grid period).
        border: pixels ignored at each edge.
        with_niqe: also compute NIQE (it costs time).
    """
    return Score(psnr_y(sr, hr, border), ssim_y(sr, hr, border), grid_db(sr, hr, scale, border),
                 colour_shift(sr, hr, border), edge_overshoot(sr, hr, border),
                 _niqe(sr, border) if with_niqe else None)


def _common_scale(upscalers: Mapping[str, Upscaler]) -> int:
    scales = {upscaler.scale for upscaler in upscalers.values()}
    if len(scales) != 1:
        raise UsageError("no model to evaluate" if not scales else
                         f"the models have different scales ({', '.join(map(str, sorted(scales)))}): "
                         "evaluate them separately")
    return scales.pop()


def _crop_path(save_dir: str | Path, folder: str | Path, spec: str, stem: str) -> Path:
    base = Path(save_dir) / Path(folder).name
    return base / f"{stem}.png" if spec == CLEAN else base / re.sub(r"[^\w.-]+", "_", spec) / f"{stem}.png"


def evaluate_folder(folder: str | Path, upscalers: Mapping[str, Upscaler], save_dir: str | Path | None = None,
                    border: int = 4, *, damage: Damage | None = None, with_niqe: bool = False,
                    on_image: Callable[[Path], object] | None = None,
                    on_skip: Callable[[str], object] | None = None) -> dict[str, list[ImageResult]]:
    """Score bicubic and each upscaler on every image of `folder`, for every degradation spec.

    Args:
        folder: HR images (walked recursively).
        upscalers: name -> Upscaler, all of the same scale.
        save_dir: write side-by-side crops here (SAVE/FOLDER/IMAGE.png; damaged specs in a subfolder per spec).
        border: pixels ignored at each edge.
        damage: spec -> steps from `parse_damage` (default: clean only). The damage is applied to the LR after the
            bicubic downscale, seeded by the image name; the bicubic row is upscaled from the same damaged LR.
        with_niqe: add NIQE for every method and for the HR originals.
        on_image: called with each image's path once it is scored (progress).
        on_skip: called with one line per image skipped, too small to score or unreadable (after the folder, when
            some image was scored: with none, the first line is the error).

    Returns:
        spec -> ImageResult per image, in file order.

    Raises:
        SrganError: no images, or no image that can be scored (the first skipped one named).
        UsageError: no upscalers, or upscalers of different scales.
    """
    paths = imaging.find_images(folder)
    if not paths:
        raise SrganError(f"{folder}: no images to evaluate")
    scale = _common_scale(upscalers)
    damage = damage or {CLEAN: ()}
    results: dict[str, list[ImageResult]] = {spec: [] for spec in damage}
    skipped: list[str] = []
    for path in paths:
        try:
            hr = load_hr(path, scale, border)
        except (TooSmall, Unreadable) as unscoreable:
            skipped.append(f"{unscoreable}: skipped")
            continue
        _score_image(path, hr, folder, upscalers, scale, border, damage, with_niqe, save_dir, results)
        if on_image:
            on_image(path)
    if skipped and not any(results.values()):
        more = f" (and {len(skipped) - 1} more images that cannot be scored)" if len(skipped) > 1 else ""
        raise SrganError(skipped[0].removesuffix(": skipped") + more)
    for line in skipped:
        if on_skip:
            on_skip(line)
    return results


def _score_image(path: Path, hr: np.ndarray, folder: str | Path, upscalers: Mapping[str, Upscaler], scale: int,
                 border: int, damage: Damage, with_niqe: bool, save_dir: str | Path | None,
                 results: dict[str, list[ImageResult]]) -> None:
    """Score one HR image for every spec and method, appending to `results` (crops saved with `save_dir`)."""
    original = _niqe(hr, border) if with_niqe else None
    for spec, steps in damage.items():
        lr = damaged_lr(hr, scale, steps, path.stem)
        outputs = {BICUBIC: bicubic_upscale(lr, scale)}
        for name, upscaler in upscalers.items():
            outputs[name] = upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8)
        scores = {method: score(sr, hr, scale, border, with_niqe) for method, sr in outputs.items()}
        results[spec].append(ImageResult(path.stem, scores, original))
        if save_dir:
            side_by_side(list(outputs.values()), hr, _crop_path(save_dir, folder, spec, path.stem))


def method_names(models: Sequence[str | Path | None]) -> list[str]:
    """A distinct column name per model: its stem ('srgan_x4'), 'parent/stem' where stems clash, 'default' for None.

    Raises:
        UsageError: the same model given twice.
    """
    stems = [Path(m).stem if m else "default" for m in models]
    names = [f"{Path(m).parent.name}/{stem}" if m and stems.count(stem) > 1 else stem
             for m, stem in zip(models, stems, strict=True)]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--model {name}: given twice")
    return names


def check_folders(folders: Sequence[str | Path]) -> None:
    """Every folder to evaluate exists.

    Raises:
        UsageError: one does not (or is a file).
    """
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise UsageError(f"{folder}: no such folder" if not folder.exists() else f"{folder}: not a folder")
