"""Random degradation plans (Real-ESRGAN's second-order pipeline): drawing one and applying it to an HR crop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.degradations.kernels import (
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    sinc_kernel,
)
from srgan_cli.evaluation.degradations.ops import RESIZE_MODES, _to_pixels, _to_planes, to_uint8
from srgan_cli.evaluation.degradations.params import DegradationParams, LrDamageParams, RoundParams
from srgan_cli.evaluation.degradations.steps import (
    Blur,
    CleanBicubic,
    Jpeg,
    Noise,
    Resize,
    Sinc,
    Step,
    _apply_step,
    iso_blur,
)

MIN_SIZE = 8


@dataclass(frozen=True, eq=False)
class DegradationPlan:
    """Every random choice of one degradation, as steps applied in order; ``lr_size`` is (height, width)."""

    steps: tuple[Step, ...]
    lr_size: tuple[int, int]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _pick(rng: np.random.Generator, probs: tuple[float, ...]) -> int:
    """An index drawn with the given probabilities (cheaper than ``rng.choice(p=...)`` for a handful)."""
    index = int(np.searchsorted(np.cumsum(probs), rng.random(), side="right"))
    return min(index, len(probs) - 1)


def _choose(rng: np.random.Generator, options: tuple[Any, ...]) -> Any:
    return options[int(rng.integers(len(options)))]


def _draw_beta(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Real-ESRGAN's beta: half the time from [low, 1], half from [1, high] (when the range contains 1)."""
    low, high = bounds
    if low <= 1.0 <= high:
        return _uniform(rng, (low, 1.0) if rng.random() < 0.5 else (1.0, high))
    return _uniform(rng, bounds)


def _sinc_cutoff(rng: np.random.Generator, size: int) -> float:
    return _uniform(rng, (np.pi / 3, np.pi) if size < 13 else (np.pi / 5, np.pi))


def _draw_gaussian_family(rng: np.random.Generator, kind: str, size: int, round_: RoundParams, stage: str) -> Blur:
    sigma_x = _uniform(rng, round_.blur_sigma)
    isotropic = kind.endswith("iso") and not kind.endswith("aniso")
    sigma_y = sigma_x if isotropic else _uniform(rng, round_.blur_sigma)
    theta = 0.0 if isotropic else _uniform(rng, (-np.pi, np.pi))
    if kind.startswith("generalized"):
        beta = _draw_beta(rng, round_.betag_range)
        kernel = generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, beta)
    elif kind.startswith("plateau"):
        beta = _draw_beta(rng, round_.betap_range)
        kernel = plateau_kernel(size, sigma_x, sigma_y, theta, beta)
    else:
        beta, kernel = 1.0, gaussian_kernel(size, sigma_x, sigma_y, theta)
    return Blur(kernel, kind, sigma_x, sigma_y, theta, beta, stage=stage)


def _draw_kernel(rng: np.random.Generator, round_: RoundParams, stage: str) -> Blur:
    size = _choose(rng, round_.kernel_sizes)
    if rng.random() < round_.sinc_prob:
        cutoff = _sinc_cutoff(rng, size)
        return Blur(sinc_kernel(size, cutoff), "sinc", cutoff=cutoff, stage=stage)
    kind = round_.kernel_list[_pick(rng, round_.kernel_prob)]
    return _draw_gaussian_family(rng, kind, size, round_, stage)


def _draw_resize(rng: np.random.Generator, round_: RoundParams, base: tuple[int, int], stage: str) -> Resize:
    direction = _pick(rng, round_.resize_prob)
    low, high = round_.resize_range
    if direction == 0:
        factor = _uniform(rng, (1.0, high))
    elif direction == 1:
        factor = _uniform(rng, (low, 1.0))
    else:
        factor = 1.0
    size = (max(MIN_SIZE, int(base[0] * factor)), max(MIN_SIZE, int(base[1] * factor)))
    return Resize(size, _choose(rng, RESIZE_MODES), factor, stage)


def _draw_noise(rng: np.random.Generator, round_: RoundParams, stage: str) -> Noise:
    gaussian = rng.random() < round_.gaussian_noise_prob
    amount = _uniform(rng, round_.noise_range if gaussian else round_.poisson_scale_range)
    gray = bool(rng.random() < round_.gray_noise_prob)
    seed = int(rng.integers(0, 2**63))
    return Noise("gaussian" if gaussian else "poisson", amount, gray, seed, stage)


def _draw_jpeg(rng: np.random.Generator, bounds: tuple[int, int], stage: str) -> Jpeg:
    return Jpeg(int(rng.integers(bounds[0], bounds[1] + 1)), stage)


def _draw_round(rng: np.random.Generator, round_: RoundParams, stage: str, base: tuple[int, int]) -> list[Step]:
    """Blur (drawn always, applied with ``blur_prob``) -> resize relative to ``base`` -> noise -> JPEG."""
    blur = _draw_kernel(rng, round_, stage)
    steps: list[Step] = [blur] if rng.random() < round_.blur_prob else []
    steps += [_draw_resize(rng, round_, base, stage), _draw_noise(rng, round_, stage)]
    return [*steps, _draw_jpeg(rng, round_.jpeg_range, stage)]


def _draw_final(rng: np.random.Generator, params: DegradationParams, lr_size: tuple[int, int]) -> list[Step]:
    """Real-ESRGAN's last stage: [resize -> sinc -> JPEG] or [JPEG -> resize -> sinc], equally likely."""
    resize_step = Resize(lr_size, _choose(rng, RESIZE_MODES), None, "final")
    steps: list[Step] = [resize_step]
    if rng.random() < params.final_sinc_prob:
        size = _choose(rng, params.first.kernel_sizes)
        cutoff = _uniform(rng, (np.pi / 3, np.pi))
        steps.append(Sinc(sinc_kernel(size, cutoff), cutoff))
    jpeg = _draw_jpeg(rng, params.second.jpeg_range, "final")
    return [*steps, jpeg] if rng.random() < 0.5 else [jpeg, *steps]


def _draw_lr_damage(rng: np.random.Generator, damage: LrDamageParams) -> list[Step]:
    """Blur, noise and JPEG on the LR, each with its probability (the order `evaluate --degrade` specs use)."""
    steps: list[Step] = []
    if rng.random() < damage.blur_prob:
        steps.append(iso_blur(_uniform(rng, damage.blur_sigma), "lr"))
    if rng.random() < damage.noise_prob:
        gray = bool(rng.random() < damage.gray_noise_prob)
        steps.append(Noise("gaussian", _uniform(rng, damage.noise_range), gray, int(rng.integers(0, 2**63)), "lr"))
    if rng.random() < damage.jpeg_prob:
        steps.append(_draw_jpeg(rng, damage.jpeg_range, "lr"))
    return steps


def _lr_size(params: DegradationParams, hr_shape: tuple[int, ...]) -> tuple[int, int]:
    height, width = hr_shape[:2]
    if height % params.scale or width % params.scale or height < params.scale or width < params.scale:
        raise SrganError(f"HR crop {height}x{width} is not a positive multiple of the scale {params.scale}")
    return height // params.scale, width // params.scale


def draw_plan(rng: np.random.Generator, params: DegradationParams, hr_shape: tuple[int, ...]) -> DegradationPlan:
    """Draw every random choice of one degradation (Real-ESRGAN's second-order pipeline).

    Args:
        rng: The only source of randomness.
        params: The parameters.
        hr_shape: The HR image's shape; height and width must be multiples of ``params.scale``.

    Returns:
        The plan: round 1, round 2 (with ``second_order_prob``) and the final stage, or the clean downscale.

    Raises:
        SrganError: If the HR size is not a multiple of the scale.
    """
    lr_size = _lr_size(params, hr_shape)
    if rng.random() < params.clean_prob:
        return DegradationPlan((CleanBicubic(lr_size),), lr_size)
    if params.lr_damage_prob and rng.random() < params.lr_damage_prob:
        return DegradationPlan((CleanBicubic(lr_size), *_draw_lr_damage(rng, params.lr_damage)), lr_size)
    steps = _draw_round(rng, params.first, "first", (hr_shape[0], hr_shape[1]))
    if rng.random() < params.second_order_prob:
        steps += _draw_round(rng, params.second, "second", lr_size)
    return DegradationPlan(tuple(steps + _draw_final(rng, params, lr_size)), lr_size)


def _check_rgb(image: np.ndarray, what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SrganError(f"{what} must be a uint8 H x W x 3 image, got {image.dtype} {image.shape}")


def apply_plan(hr: np.ndarray, plan: DegradationPlan) -> np.ndarray:
    """Apply a drawn plan to an HR image.

    Args:
        hr: uint8 H x W x 3.
        plan: From ``draw_plan`` for this image's shape.

    Returns:
        uint8 LR of ``plan.lr_size``.
    """
    _check_rgb(hr, "the HR crop")
    planes = _to_planes(hr)
    for step in plan.steps:
        planes = _apply_step(planes, step)
    return to_uint8(_to_pixels(planes))


def degrade_crop(hr: np.ndarray, seed: int, index: int, params: DegradationParams) -> np.ndarray:
    """Degrade one training crop, deterministically from (seed, index).

    Args:
        hr: uint8 H x W x 3, H and W multiples of ``params.scale``.
        seed: The run's seed (>= 0).
        index: The crop's index (>= 0).
        params: The parameters.

    Returns:
        uint8 (H / scale) x (W / scale) x 3; the same (seed, index) always gives the same bytes.
    """
    rng = np.random.default_rng((seed, index, 0x5EED))
    return apply_plan(hr, draw_plan(rng, params, hr.shape))
