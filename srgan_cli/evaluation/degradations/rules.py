"""The validation rules of degradation parameter values: one check per kind of value, and the tables per key."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from srgan_cli.evaluation.degradations.kernels import KERNEL_KINDS

# bounds that keep a drawn degradation cheap and finite (Real-ESRGAN's own ranges lie well inside them)
SIGMA_BOUNDS = (0.1, 10.0)  # blur sigmas, in px: a smaller one overflows the kernel, a larger one makes it huge
BETA_BOUNDS = (0.1, 10.0)  # shape of the generalized Gaussian and plateau kernels (Real-ESRGAN: 0.5 to 4)
RESIZE_BOUNDS = (0.1, 4.0)  # resize factors: a larger one makes images too large to degrade in time
NOISE_BOUNDS = (0.0, 255.0)  # Gaussian noise sigma in 8-bit levels, and the Poisson noise scale
KERNEL_SIZE_BOUNDS = (3, 31)  # odd kernel sides (Real-ESRGAN: 7 to 21)
SCALE = 4  # the HR / LR factor: the generators' upscaling factor, the only one training supports


class _Invalid(ValueError):
    """A value that breaks its rule; the loader adds the file and key."""


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= sys.float_info.max:
        return float(value)  # NaN fails the comparison too
    raise _Invalid(f"must be a finite number, got {json.dumps(value, default=str)[:40]}")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be an integer, got {json.dumps(value, default=str)[:40]}")
    return value


def _sequence(value: Any, length: int | None = None) -> list[Any]:
    if not isinstance(value, list | tuple) or not value:
        raise _Invalid(f"must be a non-empty list, got {json.dumps(value, default=str)}")
    if length is not None and len(value) != length:
        raise _Invalid(f"must have {length} entries, got {len(value)}")
    return list(value)


def _probability(value: Any) -> float:
    number = _number(value)
    if not 0.0 <= number <= 1.0:
        raise _Invalid(f"is a probability and must lie in [0, 1], got {number:g}")
    return number


def _distribution(value: Any, length: int | None = None) -> tuple[float, ...]:
    probs = tuple(_probability(v) for v in _sequence(value, length))
    if abs(sum(probs) - 1.0) > 1e-6:
        raise _Invalid(f"lists probabilities that must sum to 1, got {sum(probs):g}")
    return probs


def _range(value: Any) -> tuple[float, float]:
    low, high = (_number(v) for v in _sequence(value, 2))
    if low > high:
        raise _Invalid(f"is a [low, high] range and needs low <= high, got low {low:g} > high {high:g}")
    return low, high


def _within(bounds: tuple[float, float], unit: str = "") -> Callable[[Any], tuple[float, float]]:
    """The rule of a [low, high] range that must lie within ``bounds``."""

    def rule(value: Any) -> tuple[float, float]:
        low, high = _range(value)
        if low < bounds[0] or high > bounds[1]:
            raise _Invalid(f"must lie within [{bounds[0]:g}, {bounds[1]:g}]{unit}, got [{low:g}, {high:g}]")
        return low, high

    return rule


_sigma_range = _within(SIGMA_BOUNDS, " px")
_beta_range = _within(BETA_BOUNDS)
_noise_range = _within(NOISE_BOUNDS)


def _resize_range(value: Any) -> tuple[float, float]:
    low, high = _within(RESIZE_BOUNDS)(value)
    if not low <= 1.0 <= high:
        raise _Invalid(f"must contain 1 (down draws from [low, 1], up from [1, high]), got [{low:g}, {high:g}]")
    return low, high


def _jpeg_range(value: Any) -> tuple[int, int]:
    low, high = (_integer(v) for v in _sequence(value, 2))
    if not 1 <= low <= high <= 100:
        raise _Invalid(f"needs integer qualities 1 <= low <= high <= 100, got [{low}, {high}]")
    return low, high


def _kernel_kinds(value: Any) -> tuple[str, ...]:
    kinds = _sequence(value)
    bad = [kind for kind in kinds if kind not in KERNEL_KINDS]
    if bad:
        raise _Invalid(f"has unknown kernel kind {json.dumps(bad[0])} (known: {', '.join(KERNEL_KINDS)})")
    return tuple(kinds)


def _kernel_sizes(value: Any) -> tuple[int, ...]:
    sizes = tuple(_integer(v) for v in _sequence(value))
    smallest, largest = KERNEL_SIZE_BOUNDS
    bad = [size for size in sizes if not smallest <= size <= largest or size % 2 == 0]
    if bad:
        raise _Invalid(f"needs odd kernel sizes from {smallest} to {largest}, got {bad[0]}")
    return sizes


def _scale(value: Any) -> int:
    number = _integer(value)
    if number != SCALE:
        raise _Invalid(f"must be {SCALE}, the generator's upscaling factor (no other is supported), got {number}")
    return number


_ROUND_RULES: dict[str, Callable[[Any], Any]] = {
    "kernel_list": _kernel_kinds,
    "kernel_prob": _distribution,
    "kernel_sizes": _kernel_sizes,
    "blur_prob": _probability,
    "sinc_prob": _probability,
    "blur_sigma": _sigma_range,
    "betag_range": _beta_range,
    "betap_range": _beta_range,
    "resize_prob": lambda value: _distribution(value, 3),
    "resize_range": _resize_range,
    "gaussian_noise_prob": _probability,
    "noise_range": _noise_range,
    "poisson_scale_range": _noise_range,
    "gray_noise_prob": _probability,
    "jpeg_range": _jpeg_range,
}
_LR_DAMAGE_RULES: dict[str, Callable[[Any], Any]] = {
    "blur_prob": _probability,
    "blur_sigma": _sigma_range,
    "noise_prob": _probability,
    "noise_range": _noise_range,
    "gray_noise_prob": _probability,
    "jpeg_prob": _probability,
    "jpeg_range": _jpeg_range,
}
_TOP_RULES: dict[str, Callable[[Any], Any]] = {
    "second_order_prob": _probability,
    "final_sinc_prob": _probability,
    "clean_prob": _probability,
    "lr_damage_prob": _probability,
    "scale": _scale,
}
