"""The records of `srgan evaluate`: per-image scores, their means, and the strict JSON report (numpy only)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.upscale import files

ORIGINAL = "original"  # the HR images themselves: NIQE only


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
    try:
        files.write_atomic(to_json(report).encode(), path)
    except OSError as err:
        raise SrganError(f"cannot write {path}: {err.strerror or err}") from None
