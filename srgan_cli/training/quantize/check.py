"""The int8 acceptance check: Y-PSNR (and NIQE) of fp32 and int8 on held-out photos, `srgan evaluate`'s protocol."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB


def _upscaler(path: Path, threads: int | None) -> Any:
    """`srgan upscale`'s Upscaler on the CPU for this very file (an int8 file runs as itself, not looked up)."""
    from srgan_cli.upscale.inference import Upscaler
    from srgan_cli.upscale.precision import precision_of

    return Upscaler(path, device="cpu", threads=threads, precision=precision_of(path))


def _upscale(upscaler: Any, lr: np.ndarray) -> np.ndarray:
    return np.asarray(upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8))


def check_against_fp32(fp32: Path, int8: Path, photos: Path | Sequence[Path], refuse: float | None = DEFAULT_REFUSE_DB,
                       limit: int | None = None, threads: int | None = None, niqe: bool = False) -> dict[str, Any]:
    """Y-PSNR (4 px border, bicubic LR: `srgan evaluate`'s protocol) of both models on held-out photos.

    Args:
        fp32: the float32 model.
        int8: its quantized copy.
        photos: a folder of HR photos (Set5/Set14-like; not the calibration photos), or a list of photo files.
        refuse: the largest mean drop accepted, in dB (None: only measure).
        limit: use only the first `limit` photos (sorted).
        threads: ONNX Runtime threads.
        niqe: also the mean NIQE of both outputs (4 px border; photos too small for it are left out of the mean).

    Returns:
        {'photos', 'folder', 'fp32_psnr', 'int8_psnr', 'drop_db', 'worst_drop_db', 'int8_vs_fp32_psnr',
        'refuse_db'}, plus 'fp32_niqe', 'int8_niqe', 'niqe_change' with `niqe`.

    Raises:
        SrganError: no usable photo, or a drop above `refuse` (one line).
    """
    from srgan_cli.evaluation.evaluate import degrade, load_hr
    from srgan_cli.evaluation.metrics import psnr_y
    from srgan_cli.training.patches import find_photos

    reference, candidate = _upscaler(fp32, threads), _upscaler(int8, threads)
    if isinstance(photos, str | Path):
        files, folder = find_photos(photos), Path(photos).name
    else:
        files, folder = list(photos), "held-out"
    scores = []
    for path in files[:limit]:
        try:
            hr = load_hr(path, reference.scale)
        except SrganError:
            continue
        lr = degrade(hr, reference.scale)
        base, quant = _upscale(reference, lr), _upscale(candidate, lr)
        scores.append((psnr_y(base, hr), psnr_y(quant, hr), min(psnr_y(quant, base), 99.0),
                       *((_niqe(base), _niqe(quant)) if niqe else ())))
    if not scores:
        raise SrganError(f"{folder}: no photo large enough to check the int8 model on")
    table = np.asarray(scores)
    result: dict[str, Any] = {
        "photos": len(scores), "folder": folder, "fp32_psnr": round(float(table[:, 0].mean()), 4),
        "int8_psnr": round(float(table[:, 1].mean()), 4),
        "drop_db": round(float(table[:, 0].mean() - table[:, 1].mean()), 4),
        "worst_drop_db": round(float((table[:, 0] - table[:, 1]).max()), 4),
        "int8_vs_fp32_psnr": round(float(table[:, 2].mean()), 2), "refuse_db": refuse}
    if niqe:
        usable = table[np.isfinite(table[:, 3:5]).all(1)]
        result.update(fp32_niqe=round(float(usable[:, 3].mean()), 4), int8_niqe=round(float(usable[:, 4].mean()), 4),
                      niqe_change=round(float(usable[:, 4].mean() - usable[:, 3].mean()), 4))
    if refuse is not None and not result["drop_db"] <= refuse:
        raise SrganError(f"{int8}: int8 loses {result['drop_db']:.3f} dB Y-PSNR against fp32 on {len(scores)} "
                         f"photos of {folder} (bound {refuse} dB); not accepted")
    return result



def _niqe(image: np.ndarray, border: int = 4) -> float:
    """NIQE with the protocol's border, nan where the image is too small or flat for it."""
    from srgan_cli.evaluation.niqe import niqe

    try:
        return niqe(image, border=border)
    except SrganError:
        return math.nan
