"""Real-ESRGAN-style degradations (numpy + Pillow only): parameters, kernels, random plans and the --degrade spec."""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
MIN_SIZE = 8
SPEC_HELP = (
    "comma-separated STEP:VALUE list applied in order: jpeg:Q (JPEG quality, integer 1..100), "
    "noise:S / graynoise:S (Gaussian colour / gray noise, sigma in 8-bit levels > 0), "
    "poisson:S (Poisson noise, scale > 0), blur:S (isotropic Gaussian blur, sigma in px > 0); e.g. noise:6,jpeg:75"
)
_RESAMPLE = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # torchvision's rgb_to_grayscale, as Real-ESRGAN uses
_J1_INTERVALS = 48  # trapezoid intervals on [0, pi]: below 1e-12 error for |x| <= 50 (sinc kernels need <= ~45)


# ----------------------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class RoundParams:
    """One degradation round (blur, resize, noise, JPEG); the defaults are Real-ESRGAN x4plus's first round.

    Attributes:
        kernel_list: Gaussian-family kernel kinds to draw from.
        kernel_prob: Probability of each kind in ``kernel_list`` (sums to 1).
        kernel_sizes: Odd kernel sides to draw from uniformly.
        blur_prob: Probability that the round blurs at all.
        sinc_prob: Probability that the blur kernel is a 2D sinc instead of a Gaussian-family kernel.
        blur_sigma: Range of the kernel's sigmas, in px.
        betag_range: Range of the generalized Gaussian's shape parameter beta.
        betap_range: Range of the plateau kernel's shape parameter beta.
        resize_prob: Probabilities of up / down / keep.
        resize_range: Range of the resize factor (up draws from [1, high], down from [low, 1]).
        gaussian_noise_prob: Probability of Gaussian noise (otherwise Poisson noise).
        noise_range: Range of the Gaussian noise sigma, in 8-bit levels.
        poisson_scale_range: Range of the Poisson noise scale.
        gray_noise_prob: Probability that the noise is the same on the three channels.
        jpeg_range: Range of the JPEG quality (integers, inclusive).
    """

    kernel_list: tuple[str, ...] = KERNEL_KINDS
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    blur_prob: float = 1.0
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)


FIRST_ROUND = RoundParams()
SECOND_ROUND = RoundParams(
    blur_prob=0.8,
    blur_sigma=(0.2, 1.5),
    resize_prob=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
)


@dataclass(frozen=True)
class LrDamageParams:
    """First-order damage on the protocol's bicubic LR, as ``evaluate --degrade`` applies it: blur, noise, JPEG.

    Attributes:
        blur_prob: Probability of an isotropic Gaussian blur of the LR.
        blur_sigma: Range of its sigma, in LR px.
        noise_prob: Probability of Gaussian noise.
        noise_range: Range of its sigma, in 8-bit levels.
        gray_noise_prob: Probability that the noise is the same on the three channels.
        jpeg_prob: Probability of a JPEG round trip.
        jpeg_range: Range of the JPEG quality (integers, inclusive).
    """

    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 12.0)
    gray_noise_prob: float = 0.4
    jpeg_prob: float = 0.9
    jpeg_range: tuple[int, int] = (30, 95)


@dataclass(frozen=True)
class DegradationParams:
    """The whole second-order pipeline; the defaults are Real-ESRGAN x4plus's.

    Attributes:
        first: The first round.
        second: The second round (its resize is relative to the final LR size; its ``jpeg_range`` also sets the
            final JPEG, whose sinc kernel sizes come from ``first.kernel_sizes``, as Real-ESRGAN's shared range).
        second_order_prob: Probability that the second round runs at all.
        final_sinc_prob: Probability of the final sinc filter (otherwise no filter).
        clean_prob: Probability that the LR is the plain Pillow bicubic downscale (the clean evaluation protocol),
            drawn first; the rest of the pipeline is then skipped.
        lr_damage_prob: Probability (drawn next) that the LR is the bicubic downscale with ``lr_damage``'s
            first-order damage instead of the second-order pipeline: the kind of input ``evaluate --degrade`` makes.
        lr_damage: The parameters of that first-order damage.
        scale: Downscale factor between HR and LR.
    """

    first: RoundParams = FIRST_ROUND
    second: RoundParams = SECOND_ROUND
    second_order_prob: float = 1.0
    final_sinc_prob: float = 0.8
    clean_prob: float = 0.0
    lr_damage_prob: float = 0.0
    lr_damage: LrDamageParams = LrDamageParams()
    scale: int = 4


class _Invalid(ValueError):
    """A value that breaks its rule; the loader adds the file and key."""


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= sys.float_info.max:
        return float(value)  # NaN fails the comparison too
    raise _Invalid(f"must be a finite number, got {json.dumps(value)[:40]}")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be an integer, got {json.dumps(value)}")
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


def _range(value: Any, minimum: float = 0.0, strict: bool = False) -> tuple[float, float]:
    low, high = (_number(v) for v in _sequence(value, 2))
    if low > high:
        raise _Invalid(f"is a [low, high] range and needs low <= high, got low {low:g} > high {high:g}")
    if low < minimum or (strict and low <= minimum):
        raise _Invalid(f"needs low {'>' if strict else '>='} {minimum:g}, got {low:g}")
    return low, high


def _positive_range(value: Any) -> tuple[float, float]:
    return _range(value, strict=True)


def _resize_range(value: Any) -> tuple[float, float]:
    low, high = _range(value, strict=True)
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
    bad = [size for size in sizes if size < 3 or size % 2 == 0]
    if bad:
        raise _Invalid(f"needs odd kernel sizes >= 3, got {bad[0]}")
    return sizes


def _positive_int(value: Any) -> int:
    number = _integer(value)
    if number < 1:
        raise _Invalid(f"must be a positive integer, got {number}")
    return number


_ROUND_RULES: dict[str, Callable[[Any], Any]] = {
    "kernel_list": _kernel_kinds,
    "kernel_prob": _distribution,
    "kernel_sizes": _kernel_sizes,
    "blur_prob": _probability,
    "sinc_prob": _probability,
    "blur_sigma": _positive_range,
    "betag_range": _positive_range,
    "betap_range": _positive_range,
    "resize_prob": lambda value: _distribution(value, 3),
    "resize_range": _resize_range,
    "gaussian_noise_prob": _probability,
    "noise_range": _range,
    "poisson_scale_range": _range,
    "gray_noise_prob": _probability,
    "jpeg_range": _jpeg_range,
}
_LR_DAMAGE_RULES: dict[str, Callable[[Any], Any]] = {
    "blur_prob": _probability,
    "blur_sigma": _positive_range,
    "noise_prob": _probability,
    "noise_range": _range,
    "gray_noise_prob": _probability,
    "jpeg_prob": _probability,
    "jpeg_range": _jpeg_range,
}
_TOP_RULES: dict[str, Callable[[Any], Any]] = {
    "second_order_prob": _probability,
    "final_sinc_prob": _probability,
    "clean_prob": _probability,
    "lr_damage_prob": _probability,
    "scale": _positive_int,
}


def _checked(rule: Callable[[Any], Any], value: Any, key: str, source: str) -> Any:
    try:
        return rule(value)
    except _Invalid as exc:
        raise SrganError(f"{source}: degradation key '{key}' {exc}") from None


def _require_mapping(data: Any, key: str, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SrganError(f"{source}: degradation key '{key}' must be a JSON object, got {json.dumps(data)[:60]}")
    return data


def _unknown(key: str, known: Iterable[str], source: str) -> SrganError:
    return SrganError(f"{source}: unknown degradation key '{key}' (known: {', '.join(known)})")


def _merge_nested(base: Any, data: Any, prefix: str, source: str, rules: dict[str, Callable[[Any], Any]]) -> Any:
    changes = {}
    for key, value in _require_mapping(data, prefix, source).items():
        if key not in rules:
            raise _unknown(f"{prefix}.{key}", rules, source)
        changes[key] = _checked(rules[key], value, f"{prefix}.{key}", source)
    return replace(base, **changes)


def _merge_round(base: RoundParams, data: Any, prefix: str, source: str) -> RoundParams:
    merged = _merge_nested(base, data, prefix, source, _ROUND_RULES)
    if len(merged.kernel_prob) != len(merged.kernel_list):
        raise SrganError(
            f"{source}: degradation key '{prefix}.kernel_prob' has {len(merged.kernel_prob)} entries "
            f"but '{prefix}.kernel_list' has {len(merged.kernel_list)}"
        )
    return merged


def params_from_dict(data: Mapping[str, Any], source: str = "degradation parameters") -> DegradationParams:
    """Override the default parameters with a (possibly nested, possibly partial) mapping.

    Args:
        data: Keys of ``DegradationParams``; ``first`` and ``second`` hold mappings of ``RoundParams`` keys.
        source: What to name in error messages (normally the JSON file).

    Returns:
        The validated parameters.

    Raises:
        SrganError: On an unknown key, a wrong type or a value outside its allowed range (one line).
    """
    params = DegradationParams()
    changes: dict[str, Any] = {}
    for key, value in _require_mapping(data, "(top level)", source).items():
        if key in ("first", "second"):
            changes[key] = _merge_round(getattr(params, key), value, key, source)
        elif key == "lr_damage":
            changes[key] = _merge_nested(params.lr_damage, value, key, source, _LR_DAMAGE_RULES)
        elif key in _TOP_RULES:
            changes[key] = _checked(_TOP_RULES[key], value, key, source)
        else:
            raise _unknown(key, ["first", "second", "lr_damage", *_TOP_RULES], source)
    return replace(params, **changes)


def load_params(path: str | Path | None) -> DegradationParams:
    """Read degradation parameters from a JSON file that overrides any subset of the defaults.

    Args:
        path: The JSON file, e.g. ``{"clean_prob": 0.2, "second": {"noise_range": [1, 10]}}``; None for defaults.

    Returns:
        The validated parameters.

    Raises:
        SrganError: If the file cannot be read or parsed, or holds a bad key or value (one line naming both).
    """
    if path is None:
        return DegradationParams()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SrganError(f"{path}: cannot read degradation parameters ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SrganError(f"{path}: degradation parameters are not valid JSON ({exc})") from None
    return params_from_dict(data, source=str(path))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def params_to_dict(params: DegradationParams) -> dict[str, Any]:
    """Turn parameters into plain JSON-able data that ``params_from_dict`` reads back unchanged.

    Args:
        params: The parameters.

    Returns:
        A dict of numbers, strings, lists and the nested ``first`` / ``second`` dicts.
    """
    return _jsonable(asdict(params))


# ----------------------------------------------------------------------------------------------- kernels


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark a cached array read-only, so sharing it between calls (and threads) is safe."""
    array.setflags(write=False)
    return array


@lru_cache(maxsize=64)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    axis = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)  # xx varies along columns (x), yy along rows (y), as Real-ESRGAN's mesh_grid
    return _frozen(xx), _frozen(yy)


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on the kernel grid, Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"kernel sigmas must be positive, got {sigma_x}, {sigma_y}")
    cos, sin = math.cos(theta), math.sin(theta)
    inv_x, inv_y = sigma_x**-2, sigma_y**-2  # Sigma^-1 = R diag(1/sigma_x^2, 1/sigma_y^2) R^T
    xx, yy = _grid(size)
    xx_term = (cos * cos * inv_x + sin * sin * inv_y) * xx * xx
    yy_term = (sin * sin * inv_x + cos * cos * inv_y) * yy * yy
    return xx_term + 2 * cos * sin * (inv_x - inv_y) * xx * yy + yy_term


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """A (possibly anisotropic, rotated) Gaussian kernel; isotropic when ``sigma_x == sigma_y``.

    Args:
        size: Odd side length.
        sigma_x: Standard deviation along the kernel's own x axis (before rotation), in px.
        sigma_y: Standard deviation along its own y axis, in px.
        theta: Counter-clockwise rotation of the x axis, in radians (0: x runs along the columns).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """A generalized Gaussian kernel exp(-0.5 (x^T Sigma^-1 x)^beta).

    Args:
        size: Odd side length.
        sigma_x: Scale along the kernel's own x axis, in px.
        sigma_y: Scale along its own y axis, in px.
        theta: Counter-clockwise rotation, in radians.
        beta: Shape (1: Gaussian; below 1: heavier tails; above 1: flatter top).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    return _normalised(np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """A plateau-shaped kernel 1 / (1 + (x^T Sigma^-1 x)^beta).

    Args:
        size: Odd side length.
        sigma_x: Scale along the kernel's own x axis, in px.
        sigma_y: Scale along its own y axis, in px.
        theta: Counter-clockwise rotation, in radians.
        beta: Shape (larger: flatter top, sharper shoulder).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    return _normalised(1.0 / (1.0 + np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


@lru_cache(maxsize=1)
def _j1_nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tau = np.linspace(0.0, np.pi, _J1_INTERVALS + 1)
    weights = np.full(tau.shape, 1.0 / _J1_INTERVALS)
    weights[[0, -1]] *= 0.5
    return _frozen(tau), _frozen(np.sin(tau)), _frozen(weights)


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """The Bessel function J1 from its integral J1(x) = (1/pi) int_0^pi cos(t - x sin t) dt.

    The integrand is smooth, periodic and even about pi, so the trapezoid rule on [0, pi] converges exponentially;
    48 intervals give below 1e-12 error for |x| <= 50.

    Args:
        x: Arguments (any shape).

    Returns:
        J1 at each argument, float64, same shape.
    """
    tau, sin_tau, weights = _j1_nodes()
    values = np.asarray(x, dtype=np.float64)
    return np.cos(tau - values[..., None] * sin_tau) @ weights


@lru_cache(maxsize=64)
def _radii(size: int) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = _grid(size)
    radii, inverse = np.unique(np.hypot(xx, yy), return_inverse=True)
    return _frozen(radii), _frozen(inverse.reshape(size, size))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """A circular low-pass (2D sinc) kernel: cutoff J1(cutoff r) / (2 pi r), centre cutoff^2 / (4 pi).

    Args:
        size: Odd side length.
        cutoff: Angular cutoff frequency in radians per px (pi: no low-pass).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    radii, inverse = _radii(size)
    values = np.empty_like(radii)
    values[0] = cutoff**2 / (4.0 * np.pi)  # radii[0] is the centre, r = 0
    values[1:] = cutoff * bessel_j1(cutoff * radii[1:]) / (2.0 * np.pi * radii[1:])
    return _normalised(values[inverse])


# ----------------------------------------------------------------------------------------------- image operations


@lru_cache(maxsize=1)
def _smooth_lengths() -> np.ndarray:
    """All 2^a 3^b 5^c up to 8192: lengths pocketfft transforms fastest."""
    lengths = sorted({2**a * 3**b * 5**c for a in range(14) for b in range(9) for c in range(6)})
    return _frozen(np.array([n for n in lengths if n <= 8192]))


def _fft_length(minimum: int) -> int:
    lengths = _smooth_lengths()
    index = int(np.searchsorted(lengths, minimum))
    return int(lengths[index]) if index < len(lengths) else minimum


def _to_planes(image: np.ndarray) -> np.ndarray:
    """H x W x C -> contiguous float32 C x H x W, the layout the pipeline works in."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def _to_pixels(planes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


@lru_cache(maxsize=1024)
def _reflect_index(length: int, pad: int) -> np.ndarray:
    """Indices of a length-``length`` axis reflect-padded by ``pad`` (numpy's / torch's 'reflect': no edge repeat)."""
    index = np.arange(-pad, length + pad)
    if length == 1:
        return _frozen(np.zeros_like(index))
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return _frozen(np.where(index >= length, period - index, index))


def _filter_planes(planes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    _, height, width = planes.shape
    pad = kernel.shape[0] // 2
    padded = planes.take(_reflect_index(height, pad), axis=1).take(_reflect_index(width, pad), axis=2)
    shape = (_fft_length(height + 2 * pad), _fft_length(width + 2 * pad))
    kernel_spectrum = np.fft.rfft2(kernel[::-1, ::-1].astype(np.float32), s=shape)
    filtered = np.fft.irfft2(np.fft.rfft2(padded, s=shape) * kernel_spectrum, s=shape)
    return filtered[:, 2 * pad : 2 * pad + height, 2 * pad : 2 * pad + width]


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter each channel with a kernel, reflect-padded, as Real-ESRGAN's filter2D (a cross-correlation).

    Computed with a real FFT of the padded planes (float32), so its cost does not grow with the kernel size.

    Args:
        image: float32 H x W x C.
        kernel: Odd-sized square kernel.

    Returns:
        float32 H x W x C.
    """
    return _to_pixels(_filter_planes(_to_planes(image), kernel))


def _resize_plane(plane: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    image = Image.frombuffer("F", (plane.shape[1], plane.shape[0]), plane, "raw", "F", 0, 1)
    return np.frombuffer(image.resize((size[1], size[0]), resample).tobytes(), np.float32).reshape(size)


def _resize_planes(planes: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    if planes.shape[1:] == tuple(size):
        return planes
    return np.stack([_resize_plane(plane, size, _RESAMPLE[mode]) for plane in planes])


def resize(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize each channel with Pillow on float32 ('F') planes, without clipping.

    Args:
        image: float32 H x W x C.
        size: Target (height, width).
        mode: ``area`` (box), ``bilinear`` or ``bicubic``.

    Returns:
        float32 height x width x C.
    """
    return _to_pixels(_resize_planes(_to_planes(image), size, mode))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and round to uint8.

    Args:
        image: Values on 0..255.

    Returns:
        uint8, same shape.
    """
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _jpeg_planes(planes: np.ndarray, quality: int) -> np.ndarray:
    pixels = to_uint8(planes).transpose(1, 2, 0)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    # Size and mode are known: run Pillow's JPEG decoder directly (Image.open's work without its header parsing).
    decoded = Image.frombytes(image.mode, image.size, buffer.getvalue(), "jpeg", image.mode, "")
    return _to_planes(np.asarray(decoded).reshape(pixels.shape))


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through Pillow's JPEG encoder (default 4:2:0 chroma subsampling for colour).

    Args:
        image: H x W x C on 0..255 (C is 1 or 3); clipped and rounded to uint8 first.
        quality: JPEG quality 1..100.

    Returns:
        float32 H x W x C, the decoded image.
    """
    return _to_pixels(_jpeg_planes(_to_planes(image), quality))


def _gaussian_planes(planes: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    shape = (1, *planes.shape[1:]) if gray else planes.shape
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(planes + noise, 0, 255)


def add_gaussian_noise(image: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise and clip to 0..255.

    Args:
        image: float32 H x W x C on 0..255.
        sigma: Standard deviation in 8-bit levels.
        gray: Same noise on every channel (otherwise independent per channel).
        rng: The noise source.

    Returns:
        float32 H x W x C on 0..255.
    """
    return _to_pixels(_gaussian_planes(_to_planes(image), sigma, gray, rng))


def _luma(planes: np.ndarray) -> np.ndarray:
    if planes.shape[0] == 1:
        return planes
    return np.tensordot(_LUMA, planes, axes=1)[None]


def _poisson_planes(planes: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    levels = to_uint8(_luma(planes) if gray else planes)
    distinct = int(np.count_nonzero(np.bincount(levels.ravel(), minlength=256)))
    vals = 2.0 ** math.ceil(math.log2(distinct))
    counts = rng.poisson(levels * (vals / 255.0))
    noise = (counts * (255.0 / vals) - levels).astype(np.float32) * np.float32(scale)
    return np.clip(planes + noise, 0, 255)


def add_poisson_noise(image: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Add Poisson (shot) noise as Real-ESRGAN's generate_poisson_noise, then clip to 0..255.

    On the image rounded to 8 bits, ``vals`` = 2 ** ceil(log2(number of distinct values)) and the noise is
    poisson(img * vals) / vals - img on 0..1, times ``scale``. Gray noise is drawn on the luma and shared by
    the channels.

    Args:
        image: float32 H x W x C on 0..255.
        scale: Multiplier of the noise.
        gray: Noise from the luma, the same on every channel.
        rng: The noise source.

    Returns:
        float32 H x W x C on 0..255.
    """
    return _to_pixels(_poisson_planes(_to_planes(image), scale, gray, rng))


# ----------------------------------------------------------------------------------------------- plans


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


def iso_blur(sigma: float, stage: str = "spec") -> Blur:
    """An isotropic Gaussian blur step of side 2*ceil(3 sigma)+1."""
    size = 2 * math.ceil(3 * sigma) + 1
    return Blur(gaussian_kernel(size, sigma, sigma, 0.0), "iso", sigma, sigma, stage=stage)


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


# ----------------------------------------------------------------------------------------------- --degrade spec


def _spec_error(part: str, reason: str) -> UsageError:
    return UsageError(f"bad --degrade spec part {part!r}: {reason}; expected {SPEC_HELP}")


def _spec_float(part: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _spec_error(part, f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise _spec_error(part, "the value must be a finite number > 0")
    return value


def _spec_step(part: str) -> Step:
    name, colon, text = (piece.strip() for piece in part.partition(":"))
    name = name.lower()
    if not colon or not text:
        raise _spec_error(part, "each step needs a value after ':'")
    if name == "jpeg":
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise _spec_error(part, "the JPEG quality must be an integer 1..100")
        return Jpeg(int(text))
    if name in ("noise", "graynoise", "poisson"):
        kind = "poisson" if name == "poisson" else "gaussian"
        return Noise(kind, _spec_float(part, text), name == "graynoise", seed=0)
    if name == "blur":
        return iso_blur(_spec_float(part, text))
    raise _spec_error(part, f"unknown step {name!r}")


def parse_spec(text: str) -> tuple[Step, ...]:
    """Parse an evaluation degradation spec such as ``noise:6,jpeg:75``.

    Grammar: a comma-separated list of STEP:VALUE, applied in the order written, where STEP is
    ``jpeg`` (VALUE: JPEG quality, integer 1..100), ``noise`` (Gaussian colour noise, sigma in 8-bit levels > 0),
    ``graynoise`` (the same noise on all channels), ``poisson`` (Poisson noise, scale > 0) or ``blur``
    (isotropic Gaussian blur, sigma in px > 0, kernel side 2*ceil(3*sigma)+1). See ``SPEC_HELP``.

    Args:
        text: The spec.

    Returns:
        The steps, in order (noise seeds are set by ``apply_spec``).

    Raises:
        UsageError: On any malformed part (one line quoting it and stating the grammar).
    """
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(parts):
        raise _spec_error(text, "empty step")
    return tuple(_spec_step(part) for part in parts)


def apply_spec(lr: np.ndarray, steps: tuple[Step, ...], seed: int) -> np.ndarray:
    """Apply parsed spec steps to an LR image, deterministically for a given seed.

    Args:
        lr: uint8 H x W x C (C 1 or 3) or H x W.
        steps: From ``parse_spec``.
        seed: Noise seed (e.g. derived from the image name); any integer.

    Returns:
        uint8, the shape of ``lr``.

    Raises:
        SrganError: If ``lr`` is not uint8 with 1 or 3 channels.
    """
    if lr.dtype != np.uint8 or lr.ndim not in (2, 3) or (lr.ndim == 3 and lr.shape[2] not in (1, 3)):
        raise SrganError(f"--degrade needs a uint8 gray or RGB image, got {lr.dtype} {lr.shape}")
    rng = np.random.default_rng((int(seed) % 2**64, 0x5BEC))
    planes = _to_planes(lr.reshape(*lr.shape[:2], -1))
    for step in steps:
        seeded = replace(step, seed=int(rng.integers(0, 2**63))) if isinstance(step, Noise) else step
        planes = _apply_step(planes, seeded)
    return to_uint8(_to_pixels(planes)).reshape(lr.shape)
