"""Seamless tiled inference: fixed-size windows clamped inside the image, centres kept (pure numpy, no model)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from srgan_cli.errors import SrganError

# Measured with the trained generator (benchmarks/tiling.py): pad 16 keeps tiles within 1e-5 of the whole image
# (pad 8: 2.7/255), and 256-pixel tiles (288-pixel windows, about 1.5 GB) were the fastest of 128/192/256.
DEFAULT_TILE = 256
DEFAULT_PAD = 16
# int8 rounds each layer's activations, so a window edge's small change in context can flip a rounding step inside
# the kept area: at pad 16 tiled int8 output differs from whole-image output by up to 4-6 levels, at 32 by 2, at 40
# (the receptive field) by none (48 with degrid, within 1 at 40). fp32 stays within 1 level at pad 16.
INT8_PAD = 40
# int8 windows take about 3.7 kB of RSS per LR pixel against fp32's 9.5 kB (benchmarks/README.md): 400-px tiles with
# their pad of 40 (480-px windows) stay under the memory of fp32's 288-px windows.
INT8_CPU_TILE = 400
MIN_TILE = 16  # out of memory on tiles this small: the tile is not the cause
Run = Callable[[np.ndarray], np.ndarray]  # float32 (h, w, C) window -> float32 (h*scale, w*scale, C') result


@dataclass(frozen=True)
class Window:
    """One inference window: the LR box fed to the model and the part of it whose result is kept.

    Attributes:
        y0, y1, x0, x1 (int): kept LR region [y0, y1) x [x0, x1).
        wy, wx (int): top-left of the window in LR pixels.
        height, width (int): window size (the same for every window of an image).
    """

    y0: int
    y1: int
    x0: int
    x1: int
    wy: int
    wx: int
    height: int
    width: int


def runs_whole(length: int, tile: int, pad: int) -> bool:
    """Whether an axis runs in one window: no tile (0), or it fits one window of tile + 2 * pad (the memory bound)."""
    return tile <= 0 or length <= tile + 2 * pad


def plan_axis(length: int, tile: int, pad: int) -> tuple[int, list[tuple[int, int, int]]]:
    """Split one axis into near-equal kept spans of at most `tile`, each inside a window of one fixed size.

    Args:
        length (int): axis length in LR pixels.
        tile (int): largest kept span (0: the whole axis); an axis that fits one window of tile + 2 * pad runs whole.
        pad (int): context pixels wanted on each side of a kept span.

    Returns:
        tuple: (window size, list of (keep_start, keep_end, window_start)).
    """
    if runs_whole(length, tile, pad):
        return length, [(0, length, 0)]
    count = math.ceil(length / tile)
    span = math.ceil(length / count)
    size = min(span + 2 * pad, length)
    spans = []
    for start in range(0, length, span):
        end = min(start + span, length)
        spans.append((start, end, min(max(start - pad, 0), length - size)))
    return size, spans


def plan_windows(height: int, width: int, tile: int, pad: int) -> list[Window]:
    """All windows covering an HxW image, row by row; every window has the same shape."""
    win_h, rows = plan_axis(height, tile, pad)
    win_w, cols = plan_axis(width, tile, pad)
    return [Window(y0, y1, x0, x1, wy, wx, win_h, win_w) for y0, y1, wy in rows for x0, x1, wx in cols]


def upscale_tiled(image: np.ndarray, run: Run, scale: int, tile: int, pad: int,
                  finish: Callable[[np.ndarray], np.ndarray] | None = None, out: np.ndarray | None = None,
                  on_window: Callable[[int], object] | None = None) -> np.ndarray:
    """Run `run` over windows of `image` and assemble the kept centres.

    Args:
        image (np.ndarray): HxWxC float32 model input.
        run (callable): float32 (h, w, C) window -> float32 (h*scale, w*scale, C') result.
        scale (int): model scale.
        tile (int): largest kept span in LR pixels (0: whole image).
        pad (int): context pixels per side.
        finish (callable | None): maps a kept float block to the output dtype/channels (default: identity).
        out (np.ndarray | None): preallocated output; default float32 (H*scale, W*scale, C').
        on_window (callable | None): called with the number of LR pixels done after each window.

    Returns:
        np.ndarray: the assembled output.
    """
    height, width = image.shape[:2]
    for win in plan_windows(height, width, tile, pad):
        result = run(image[win.wy:win.wy + win.height, win.wx:win.wx + win.width])
        top, left = (win.y0 - win.wy) * scale, (win.x0 - win.wx) * scale
        block = result[top:top + (win.y1 - win.y0) * scale, left:left + (win.x1 - win.x0) * scale]
        block = finish(block) if finish else block
        if out is None:
            out = np.empty((height * scale, width * scale, block.shape[2]), dtype=block.dtype)
        out[win.y0 * scale:win.y1 * scale, win.x0 * scale:win.x1 * scale] = block
        if on_window:
            on_window((win.y1 - win.y0) * (win.x1 - win.x0))
    if out is None:
        raise SrganError("cannot upscale an empty image")
    return out


class TileOutOfMemory(SrganError):
    """The model ran out of memory on a window whose longer side is `tile` (`upscale_retrying` retries smaller)."""

    def __init__(self, tile: int) -> None:
        super().__init__(f"out of memory running the model on {tile}-px windows")
        self.tile = tile


def default_pad(precision: str) -> int:
    """The tile pad used when none is given: INT8_PAD for int8 (exact tiles), else DEFAULT_PAD."""
    return INT8_PAD if precision == "int8" else DEFAULT_PAD


def default_tile(precision: str, device: str) -> int:
    """The tile used when none is given: INT8_CPU_TILE for int8 on the CPU (the same memory), else DEFAULT_TILE."""
    return INT8_CPU_TILE if precision == "int8" and device == "cpu" else DEFAULT_TILE


def _effective_tile(tile: int, side: int, pad: int) -> int:
    """The kept tile side a tile setting gives on an image whose longer side is `side` (see `plan_axis`)."""
    return side if runs_whole(side, tile, pad) else tile


def upscale_retrying(image: np.ndarray, run: Run, scale: int, tile: int, pad: int,
                     finish: Callable[[np.ndarray], np.ndarray] | None = None,
                     on_window: Callable[[int], object] | None = None, notes: list[str] | None = None) -> np.ndarray:
    """`upscale_tiled`, retried with half the tile each time `run` raises TileOutOfMemory (as chaiNNer does).

    Args:
        image, run, scale, tile, pad, finish: as `upscale_tiled`.
        on_window: as `upscale_tiled`; a failed try's pixels are taken back (a negative count).
        notes: receives one line when the tile had to shrink.

    Raises:
        TileOutOfMemory: out of memory even on tiles of MIN_TILE px (its `tile`: the last tile tried).
    """
    side, current = max(image.shape[:2]), tile
    while True:
        done = [0]

        def counted(pixels: int, done: list[int] = done) -> None:
            done[0] += pixels
            if on_window:
                on_window(pixels)
        try:
            out = upscale_tiled(image, run, scale, current, pad, finish=finish, on_window=counted)
        except TileOutOfMemory:
            if on_window and done[0]:
                on_window(-done[0])
            tried = _effective_tile(current, side, pad)
            if tried // 2 < MIN_TILE:
                raise TileOutOfMemory(tried) from None
            current = tried // 2
            continue
        if current != tile and notes is not None:
            notes.append(f"out of memory with {_effective_tile(tile, side, pad)}-px tiles: used {current}-px tiles "
                         "(a smaller --tile saves the retries)")
        return out


def _dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 flips/rotations of an HxWxC array (k in 0..7)."""
    array = np.rot90(array, k % 4)
    return array[:, ::-1] if k >= 4 else array


def _undo_dihedral(array: np.ndarray, k: int) -> np.ndarray:
    array = array[:, ::-1] if k >= 4 else array
    return np.rot90(array, -(k % 4))


def self_ensemble(run: Run) -> Run:
    """Wrap `run` to average its results over the 8 dihedral transforms (test-time augmentation)."""
    def ensembled(window: np.ndarray) -> np.ndarray:
        def transformed(k: int) -> np.ndarray:
            return _undo_dihedral(run(np.ascontiguousarray(_dihedral(window, k))), k)

        total = transformed(0).astype(np.float32)
        for k in range(1, 8):
            total = total + transformed(k)
        return total / 8.0
    return ensembled
