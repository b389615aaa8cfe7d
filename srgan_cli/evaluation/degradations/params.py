"""Degradation parameters: the dataclasses with Real-ESRGAN's defaults, and reading, validating and writing them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.degradations.kernels import KERNEL_KINDS
from srgan_cli.evaluation.degradations.rules import _LR_DAMAGE_RULES, _ROUND_RULES, _TOP_RULES, _Invalid


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


def _checked(rule: Callable[[Any], Any], value: Any, key: str, source: str) -> Any:
    try:
        return rule(value)
    except _Invalid as exc:
        raise SrganError(f"{source}: degradation key '{key}' {exc}") from None


def _require_mapping(data: Any, key: str, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        shown = json.dumps(data, default=str)[:60]
        raise SrganError(f"{source}: degradation key '{key}' must be a JSON object, got {shown}")
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
