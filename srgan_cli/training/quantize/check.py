"""The int8 acceptance check: Y-PSNR (and NIQE) of fp32 and int8 on held-out photos, `srgan evaluate`'s protocol."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.quantize.graph import open_session
from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB, read_contract


class _Runner:
    """An ONNX model on uint8 RGB LR arrays, tiled like `srgan upscale` (for the accuracy check)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnx

        self.session = open_session(str(path), threads)
        self.layout, self.range, self.scale = read_contract(onnx.load(str(path), load_external_data=False))
        self.name = self.session.get_inputs()[0].name

    def run(self, window: np.ndarray) -> np.ndarray:
        lo, hi = self.range
        batch = window[None] * (hi - lo) + lo
        batch = batch.transpose(0, 3, 1, 2) if self.layout == "NCHW" else batch
        out = self.session.run(None, {self.name: np.ascontiguousarray(batch, np.float32)})[0]
        out = out.transpose(0, 2, 3, 1) if self.layout == "NCHW" else out
        return (out[0] - lo) / (hi - lo)

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE, upscale_tiled

        out = upscale_tiled(lr.astype(np.float32) / 255.0, self.run, self.scale, DEFAULT_TILE, DEFAULT_PAD)
        return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


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

    reference, candidate = _Runner(fp32, threads), _Runner(int8, threads)
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
        base, quant = reference.upscale(lr), candidate.upscale(lr)
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
