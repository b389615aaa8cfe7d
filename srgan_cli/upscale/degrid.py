"""Grid suppression: takes out of an SR result the part that repeats with the LR pixel grid (numpy and Pillow).

A sub-pixel upsampler renders each of the scale x scale output phases of an LR pixel with its own filters, and an
adversarially trained one drifts them apart: a faint 4-px grid, most visible on flat sky. Whatever the model adds at
the grid's own frequencies is invented: the LR cannot hold them (they alias to its DC). So the residual over a
bicubic enlargement is split into its phases, each phase's local mean (a Gaussian of about `sigma` LR pixels) is
compared with the mean of all phases, and the difference is taken out. The grid that remains is bicubic's own;
texture away from the grid's frequencies is kept. Within `BORDER` LR pixels of an edge of the window the estimate
runs along the edge only: the model's zero padding gives the outermost rows a grid of their own.

Models ask for it in their metadata (`srgan export --degrid`); measured on BSD100 in weights/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.upscale.contract import asked_for
from srgan_cli.upscale.pixels import check_enlarged, resize_plane
from srgan_cli.upscale.tiling import Run

METADATA_KEY = "degrid"  # the model's metadata: the sigma in LR pixels its outputs are degridded with
DEFAULT_SIGMA = 1.5  # srgan_x4_real, BSD100 clean: images with a grid score over 7 dB 58 -> 0, PSNR +0.015, NIQE -0.06
MAX_SIGMA = 4.0  # wider estimates follow no grid a model makes, and cost time as sigma squared
BORDER = 2  # LR pixels along each window edge where the grid is estimated along the edge only


def degrid_sigma(session: Any, wanted: bool | None) -> float:
    """The sigma to degrid a model's results with (0.0: none).

    Args:
        session: the open onnxruntime.InferenceSession.
        wanted: True: always (the metadata's sigma, else DEFAULT_SIGMA); False: never; None: as the metadata asks.

    Raises:
        SrganError: the metadata's value is not a number from 0 to MAX_SIGMA (unless `wanted` is False).
    """
    return asked_for(session, wanted, sigma_from_metadata, DEFAULT_SIGMA)


def sigma_from_metadata(meta: Mapping[str, str]) -> float:
    """The degrid sigma a model's metadata asks for (0.0: none asked for).

    Raises:
        SrganError: the metadata value is not a number from 0 to MAX_SIGMA.
    """
    text = meta.get(METADATA_KEY, "0")
    try:
        sigma = float(text.strip()) if text.strip().replace(".", "", 1).isdigit() else -1.0
    except ValueError:
        sigma = -1.0
    if not 0 <= sigma <= MAX_SIGMA:
        raise SrganError(f"the model's metadata has {METADATA_KEY} {text!r}, not a number from 0 to {MAX_SIGMA:g}; "
                         "pass --no-degrid to ignore it")
    return sigma


def degridded(run: Run, scale: int, sigma: float) -> Run:
    """Wrap a window runner so that each window's result is degridded against that window (before its pad is cut)."""
    def run_degridded(window: np.ndarray) -> np.ndarray:
        return remove_grid(run(window), window, scale, sigma)
    return run_degridded


def _box3(array: np.ndarray, axis: int) -> np.ndarray:
    """Mean of 3 neighbours along axis 0 or 1, the edge value repeated past the ends."""
    a = np.moveaxis(array, axis, 0)
    if len(a) < 2:
        return array.copy()
    out = np.empty_like(a)
    np.add(a[:-2], a[2:], out=out[1:-1])
    out[1:-1] += a[1:-1]
    out[0] = 2 * a[0] + a[1]
    out[-1] = a[-2] + 2 * a[-1]
    out /= 3
    return np.moveaxis(out, 0, axis)


def _smooth(array: np.ndarray, axis: int, passes: int) -> np.ndarray:
    for _ in range(passes):
        array = _box3(array, axis)
    return array


def smooth_2d(array: np.ndarray, sigma: float) -> np.ndarray:
    """`array` blurred over its first two axes by a cascade of 3-wide boxes of about a Gaussian's `sigma` (pixels)."""
    return _smooth_both(array, _passes(sigma))


def _smooth_both(array: np.ndarray, passes: int) -> np.ndarray:
    return _smooth(_smooth(array, 1, passes), 0, passes)


def _phase_mean(residual: np.ndarray) -> np.ndarray:
    """Mean over the last axis of (h, w, phases), summed slice by slice (numpy's own reduce is slower here)."""
    total = residual[:, :, 0].copy()
    for phase in range(1, residual.shape[2]):
        total += residual[:, :, phase]
    return (total / residual.shape[2])[:, :, None]


def _passes(sigma: float) -> int:
    """Passes of the 3-box whose cascade has about the variance sigma^2 (each adds 2/3)."""
    return max(1, round(1.5 * sigma * sigma))


def remove_grid(sr: np.ndarray, lr: np.ndarray, scale: int, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """`sr` less the part of its residual over bicubic that repeats with the LR pixel grid.

    Args:
        sr: float32 (h*scale, w*scale, C), the model's result for `lr`.
        lr: float32 (h, w, C), the model's input, in the same value range as `sr`.
        scale: the model's scale.
        sigma: how local the grid estimate is, in LR pixels (a smaller one follows the grid closer and takes out
            more of the texture next to the grid's frequencies); 0 returns `sr` as it is.

    Returns:
        float32 array of `sr`'s shape.

    Raises:
        ValueError: `sr` is not `lr` enlarged `scale` times with the same channels.
    """
    check_enlarged(sr, lr, scale, "remove_grid")
    height, width, channels = lr.shape
    if not sigma:
        return sr
    out = np.empty(sr.shape, np.float32)
    for c in range(channels):  # a channel at a time: a third of the memory
        residual = sr[..., c] - resize_plane(lr[..., c], (width * scale, height * scale), Image.Resampling.BICUBIC)
        out[..., c] = sr[..., c] - _grid_of(residual, scale, _passes(sigma))
    return out


def _grid_of(residual: np.ndarray, scale: int, passes: int) -> np.ndarray:
    """The part of one channel's (H, W) residual that repeats with the grid, estimated locally.

    Inside, a smoothed estimate that does not reach into the outermost BORDER rows and columns (their grid comes
    from the model's zero padding, not from the picture); along an edge, one smoothed along that edge alone; in a
    corner, the deviation of those very pixels.
    """
    height, width = residual.shape[0] // scale, residual.shape[1] // scale
    phases = residual.reshape(height, scale, width, scale).transpose(0, 2, 1, 3).reshape(height, width, scale * scale)
    deviation = phases - _phase_mean(phases)
    rows, cols = _inner(height), _inner(width)
    inner = deviation[rows][:, cols]  # the edges repeat the nearest inner row or column
    grid = _smooth_both(inner, passes)
    edge_y, edge_x = min(BORDER, height // 2), min(BORDER, width // 2)
    for side in (slice(0, edge_y), slice(height - edge_y, height)):
        grid[side] = _smooth(deviation[side][:, cols], 1, passes)
    for side in (slice(0, edge_x), slice(width - edge_x, width)):
        grid[:, side] = _smooth(deviation[:, side][rows], 0, passes)
        for corner in (slice(0, edge_y), slice(height - edge_y, height)):
            grid[corner, side] = deviation[corner, side]
    return grid.reshape(height, width, scale, scale).transpose(0, 2, 1, 3).reshape(height * scale, width * scale)


def _inner(length: int) -> np.ndarray:
    """Indices 0..length-1 with the outermost BORDER on each side replaced by the nearest inner one (if any)."""
    edge = min(BORDER, (length - 1) // 2)
    return np.clip(np.arange(length), edge, length - 1 - edge)
