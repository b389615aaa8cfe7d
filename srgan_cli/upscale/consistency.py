"""LR consistency: projects back into an SR result what its bicubic downscale lacks of the LR (numpy and Pillow).

An adversarial model draws texture its LR does not ask for, and drifts in tint: its results, downscaled by bicubic,
match their own input at only 37-41 dB. Irani and Peleg's iterative back-projection, under the evaluation protocol's
own model of the LR (the HR downscaled by bicubic), takes that difference back: `x <- x + up(g * (lr - down(x)))`,
a few times, with Pillow's bicubic both ways. Where the input is damaged (JPEG, noise), the model's result departs
from it on purpose, and back-projection would put the damage back; so the gate `g` opens only where the departure
is small: under `GATE_OPEN` 8-bit levels RMS (of BT.601 Y, averaged over about `GATE_SIGMA` LR pixels around), closing
linearly to 0 at `GATE_SHUT`. Where it is shut, only the departure's low frequencies (blurred over `LOW_SIGMA` LR
pixels) go back: tint and local brightness, which JPEG blocks and noise hardly carry. Everything is local, so each
tile is projected within its window, before its pad is cut, and tiles stay seamless.

Models ask for it in their metadata (`srgan export --consistency`); measured on BSD100 in weights/README.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.upscale.contract import asked_for
from srgan_cli.upscale.degrid import smooth_2d
from srgan_cli.upscale.pixels import check_enlarged, resize_channels, resize_plane
from srgan_cli.upscale.tiling import Run

METADATA_KEY = "consistency"  # the model's metadata: the back-projection passes its results get
DEFAULT_ITERATIONS = 10  # srgan_x4_real, BSD100 clean: 6 passes NIQE +0.03 (weights/README.md)
MAX_ITERATIONS = 16  # each pass reaches a little further; 10 stay within 1/255 of the whole image at the default pad
GATE_SIGMA = 2.0  # LR pixels over which the departure from the LR is measured (4: clean NIQE +0.01 to +0.02)
GATE_OPEN = 1.5 / 255  # departures (Y RMS, [0, 1] values) under this are projected back in full
GATE_SHUT = 2.5 / 255  # and from this up only in low frequencies: the LR is taken to be damaged there
LOW_SIGMA = 1.0  # LR pixels; 0.7 lets JPEG damage through (BSD100 jpeg:75 -0.25 dB), 2 keeps less of the tint
LUMA = np.array([65.481, 128.553, 24.966], np.float32) / 255  # BT.601 Y as the evaluation's PSNR-Y weighs it


def consistency_passes(session: Any, wanted: bool | None) -> int:
    """The back-projection passes to give a model's results (0: none).

    Args:
        session: the open onnxruntime.InferenceSession.
        wanted: True: always (the metadata's passes, else DEFAULT_ITERATIONS); False: never; None: as the metadata
            asks.

    Raises:
        SrganError: the metadata's value is not a whole number from 0 to MAX_ITERATIONS (unless `wanted` is False).
    """
    return asked_for(session, wanted, passes_from_metadata, DEFAULT_ITERATIONS)


def passes_from_metadata(meta: Mapping[str, str]) -> int:
    """The back-projection passes a model's metadata asks for (0: none asked for).

    Raises:
        SrganError: the metadata value is not a whole number from 0 to MAX_ITERATIONS.
    """
    text = meta.get(METADATA_KEY, "0").strip()
    passes = int(text) if re.fullmatch(r"[0-9]{1,2}", text) else -1  # ASCII digits only: int() takes others too
    if not 0 <= passes <= MAX_ITERATIONS:
        raise SrganError(f"the model's metadata has {METADATA_KEY} {text!r}, not a whole number from 0 to "
                         f"{MAX_ITERATIONS}; pass --no-consistency to ignore it")
    return passes


def consistent(run: Run, scale: int, passes: int) -> Run:
    """Wrap a window runner so that each window's result is projected back onto that window (before its pad is cut)."""
    def run_consistent(window: np.ndarray) -> np.ndarray:
        return back_project(run(window), window, scale, passes)
    return run_consistent


def back_project(sr: np.ndarray, lr: np.ndarray, scale: int, passes: int = DEFAULT_ITERATIONS) -> np.ndarray:
    """`sr` moved until its bicubic downscale matches `lr`: in full where the gate is open, else in low frequencies.

    Args:
        sr: float32 (h*scale, w*scale, C), the model's result for `lr`, values in [0, 1].
        lr: float32 (h, w, C), the model's input, in the same value range.
        scale: the model's scale.
        passes: back-projection passes; 0 returns `sr` as it is.

    Returns:
        float32 array of `sr`'s shape, not clipped to [0, 1] (as the model's own results are not: integer results
        are clipped when they are rounded).

    Raises:
        ValueError: `sr` is not `lr` enlarged `scale` times with the same channels.
    """
    check_enlarged(sr, lr, scale, "back_project")
    if not passes:
        return sr
    height, width = lr.shape[:2]
    residual = lr - _resized(sr, (width, height))
    gate, kernel = _gate(residual), _round_trip_kernel(scale)
    total = np.zeros_like(residual)
    for _ in range(passes):  # in LR pixels: up then down is a small separable filter there, 16x fewer pixels
        kept = gate * residual + (1 - gate) * smooth_2d(residual, LOW_SIGMA)
        total += kept
        residual -= _filtered(_filtered(kept, kernel, 0), kernel, 1)
    return sr + _resized(total, (width * scale, height * scale))


@functools.lru_cache(maxsize=8)
def _round_trip_kernel(scale: int) -> np.ndarray:
    """The 1-D filter that a bicubic enlargement by `scale` and the bicubic reduction back make on an LR line."""
    size, centre = 64, 32
    impulse = np.zeros((1, size), np.float32)
    impulse[0, centre] = 1.0
    line = resize_plane(resize_plane(impulse, (size * scale, 1), Image.Resampling.BICUBIC), (size, 1),
                        Image.Resampling.BICUBIC)[0]
    reach = int(np.max(np.nonzero(np.abs(line) > 1e-7)[0])) - centre
    return line[centre - reach:centre + reach + 1].astype(np.float32)


def _filtered(array: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """`array` convolved with the symmetric `kernel` along `axis`, its edge values repeated beyond it."""
    reach = len(kernel) // 2
    moved = np.moveaxis(array, axis, 0)
    padded = np.concatenate([np.repeat(moved[:1], reach, 0), moved, np.repeat(moved[-1:], reach, 0)])
    out = kernel[0] * padded[:len(moved)]
    for tap in range(1, len(kernel)):
        out += kernel[tap] * padded[tap:tap + len(moved)]
    return np.moveaxis(out, 0, axis)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return resize_channels(image, size, Image.Resampling.BICUBIC)


def _gate(residual: np.ndarray) -> np.ndarray:
    """(h, w, 1) weights in [0, 1]: 1 where the local luma RMS of `residual` is under GATE_OPEN, 0 from GATE_SHUT."""
    luma = residual @ LUMA if residual.shape[2] == 3 else residual.mean(axis=2)
    rms = np.sqrt(smooth_2d(luma * luma, GATE_SIGMA))
    return np.clip((GATE_SHUT - rms) / (GATE_SHUT - GATE_OPEN), 0.0, 1.0)[..., None].astype(np.float32)
