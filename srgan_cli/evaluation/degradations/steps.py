"""The steps a degradation is made of (blur, resize, noise, JPEG, sinc, clean bicubic) and applying one of them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan_cli.evaluation.degradations.kernels import gaussian_kernel
from srgan_cli.evaluation.degradations.ops import (
    _filter_planes,
    _gaussian_planes,
    _jpeg_planes,
    _poisson_planes,
    _resize_planes,
    _to_pixels,
    _to_planes,
    to_uint8,
)


@dataclass(frozen=True, eq=False)
class Blur:
    """Filter with a kernel, keeping the drawn values that built it.

    Attributes:
        kernel: The odd-sized kernel, summing to 1.
        kind: One of ``KERNEL_KINDS`` or ``sinc``.
        sigma_x: Sigma along the kernel's own x axis (0 for sinc).
        sigma_y: Sigma along its own y axis (0 for sinc).
        theta: Rotation in radians.
        beta: Shape of the generalized / plateau kernels (1 otherwise).
        cutoff: Sinc cutoff in radians per px (0 otherwise).
        stage: ``first``, ``second`` or ``spec``.
    """

    kernel: np.ndarray
    kind: str
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0
    beta: float = 1.0
    cutoff: float = 0.0
    stage: str = "spec"


@dataclass(frozen=True)
class Resize:
    """Resize to ``size`` (height, width) with ``mode``; ``factor`` is the drawn scale (None for the final)."""

    size: tuple[int, int]
    mode: str
    factor: float | None = None
    stage: str = "final"


@dataclass(frozen=True)
class Noise:
    """Add ``gaussian`` (``amount`` = sigma in levels) or ``poisson`` (``amount`` = scale) noise from ``seed``."""

    kind: str
    amount: float
    gray: bool
    seed: int
    stage: str = "spec"


@dataclass(frozen=True)
class Jpeg:
    """JPEG round trip at ``quality``."""

    quality: int
    stage: str = "spec"


@dataclass(frozen=True, eq=False)
class Sinc:
    """The final circular low-pass filter."""

    kernel: np.ndarray
    cutoff: float
    stage: str = "final"


@dataclass(frozen=True)
class CleanBicubic:
    """The clean protocol: Pillow bicubic downscale of the uint8 RGB image to ``size`` (height, width)."""

    size: tuple[int, int]
    stage: str = "clean"


Step = Blur | Resize | Noise | Jpeg | Sinc | CleanBicubic


def iso_blur(sigma: float, stage: str = "spec") -> Blur:
    """An isotropic Gaussian blur step of side 2*ceil(3 sigma)+1."""
    size = 2 * math.ceil(3 * sigma) + 1
    return Blur(gaussian_kernel(size, sigma, sigma, 0.0), "iso", sigma, sigma, stage=stage)


def _apply_step(planes: np.ndarray, step: Step) -> np.ndarray:
    """One step on float32 C x H x W planes."""
    if isinstance(step, Blur | Sinc):
        return _filter_planes(planes, step.kernel)
    if isinstance(step, Resize):
        return _resize_planes(planes, step.size, step.mode)
    if isinstance(step, Noise):
        add = _gaussian_planes if step.kind == "gaussian" else _poisson_planes
        return add(planes, step.amount, step.gray, np.random.default_rng(step.seed))
    if isinstance(step, Jpeg):
        return _jpeg_planes(planes, step.quality)
    height, width = step.size
    downscaled = Image.fromarray(to_uint8(_to_pixels(planes))).resize((width, height), Image.Resampling.BICUBIC)
    return _to_planes(np.asarray(downscaled))
