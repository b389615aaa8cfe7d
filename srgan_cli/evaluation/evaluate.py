"""`srgan evaluate`'s protocol: the standard x4 SR protocol (bicubic LR, Y-channel PSNR/SSIM and artifact scores
with a 4 px border) with bicubic beside every model, the LR optionally damaged (`--degrade`), NIQE on request.

One pass per folder: each HR image is loaded once, then for each degradation spec its LR is made (damage seeded by
the image name: the same on every run), upscaled by bicubic and every model, and scored against the HR.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation.degradations import Step, apply_spec, parse_spec
from srgan_cli.evaluation.metrics import SSIM_WINDOW, colour_shift, edge_overshoot, grid_db, mod_crop, psnr_y, ssim_y
from srgan_cli.upscale import formats, imaging

if TYPE_CHECKING:
    from srgan_cli.upscale.inference import Upscaler

BICUBIC = "bicubic"  # the baseline method, scored beside every model
ORIGINAL = "original"  # the HR images themselves: NIQE only
CLEAN = "clean"  # the degradation spec of the undamaged protocol (the default)
Damage = Mapping[str, tuple[Step, ...]]  # spec text -> parsed steps (CLEAN -> ())


@dataclass
class Score:
    """One method's scores on one image, or their means.

    Attributes:
        psnr: Y-channel PSNR in dB (inf for an exact output).
        ssim: Y-channel SSIM.
        grid: `metrics.grid_db`, the LR-grid-periodic error in dB (0-7 for bicubic).
        tint: `metrics.colour_shift`, the largest per-channel mean error in 8-bit levels.
        halo: `metrics.edge_overshoot`, output beyond the photo's local range at strong edges, in levels.
        niqe: NIQE of the whole output (lower = more natural), None unless asked for; nan where the image is too
            small for it.
    """

    psnr: float
    ssim: float
    grid: float
    tint: float
    halo: float
    niqe: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The scores computed (niqe only when asked for)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ImageResult:
    """The scores of every method on one image (or their means, named 'mean').

    Attributes:
        name: the image's file stem.
        scores: method ('bicubic' or a model name) -> Score.
        original_niqe: NIQE of the HR image itself, with NIQE asked for.
    """

    name: str
    scores: dict[str, Score] = field(default_factory=dict)
    original_niqe: float | None = None

    def as_dict(self) -> dict[str, dict[str, float]]:
        """method -> scores, plus 'original' -> {'niqe': ...} with NIQE asked for."""
        out = {method: score.as_dict() for method, score in self.scores.items()}
        if self.original_niqe is not None:
            out[ORIGINAL] = {"niqe": self.original_niqe}
        return out


def load_hr(path: str | Path, scale: int, border: int = 4) -> np.ndarray:
    """HR image as 8-bit RGB (grayscale replicated), cropped to multiples of the scale; big enough to score.

    Raises:
        SrganError: unreadable, or too small to score (both naming the file).
    """
    try:
        hr = mod_crop(imaging.read_rgb8(path), scale)
    except SrganError as err:
        raise SrganError(f"{path}: {err}") from None
    least = 2 * border + SSIM_WINDOW
    if min(hr.shape[:2]) < least:
        raise SrganError(f"{path}: {hr.shape[1]}x{hr.shape[0]} after cropping to multiples of {scale} is too small "
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
                    border: int = 4, *, damage: Damage | None = None,
                    with_niqe: bool = False) -> dict[str, list[ImageResult]]:
    """Score bicubic and each upscaler on every image of `folder`, for every degradation spec.

    Args:
        folder: HR images (walked recursively).
        upscalers: name -> Upscaler, all of the same scale.
        save_dir: write side-by-side crops here (SAVE/FOLDER/IMAGE.png; damaged specs in a subfolder per spec).
        border: pixels ignored at each edge.
        damage: spec -> steps from `parse_damage` (default: clean only). The damage is applied to the LR after the
            bicubic downscale, seeded by the image name; the bicubic row is upscaled from the same damaged LR.
        with_niqe: add NIQE for every method and for the HR originals.

    Returns:
        spec -> ImageResult per image, in file order.

    Raises:
        SrganError: no images, or an image that cannot be read or scored (named).
        UsageError: no upscalers, or upscalers of different scales.
    """
    paths = imaging.find_images(folder)
    if not paths:
        raise SrganError(f"{folder}: no images to evaluate")
    scale = _common_scale(upscalers)
    damage = damage or {CLEAN: ()}
    results: dict[str, list[ImageResult]] = {spec: [] for spec in damage}
    for path in paths:
        hr = load_hr(path, scale, border)
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
    return results


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def _mean_niqe(values: Sequence[float | None]) -> float | None:
    """Mean over the images NIQE could score (None: not computed; nan: none could be)."""
    if all(v is None for v in values):
        return None
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def mean_result(results: Sequence[ImageResult]) -> ImageResult:
    """Per method, the mean of every score over the images, as an ImageResult named 'mean'.

    NIQE means leave out the images too small for NIQE.

    Raises:
        SrganError: no results.
    """
    if not results:
        raise SrganError("no images to average")
    full_reference = [f.name for f in fields(Score) if f.name != "niqe"]
    means = {}
    for method in results[0].scores:
        scores = [r.scores[method] for r in results]
        mean = Score(*(_mean([getattr(s, name) for s in scores]) for name in full_reference))
        means[method] = replace(mean, niqe=_mean_niqe([s.niqe for s in scores]))
    return ImageResult("mean", means, _mean_niqe([r.original_niqe for r in results]))


def folder_report(results: Sequence[ImageResult]) -> dict[str, Any]:
    """The JSON section of one folder and spec: {'images': {name: {method: scores}}, 'mean': {method: scores}}."""
    return {"images": {r.name: r.as_dict() for r in results}, "mean": mean_result(results).as_dict()}


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively (JSON has no inf or nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(report: Mapping[str, Any]) -> str:
    """Strict JSON text of a report (folder -> spec -> `folder_report`): non-finite numbers become null."""
    return json.dumps(_finite(report), indent=2, allow_nan=False) + "\n"


def write_json(report: Mapping[str, Any], path: str | Path) -> None:
    """Write `to_json(report)` atomically.

    Raises:
        SrganError: the file cannot be written.
    """
    _write(to_json(report).encode(), path)
