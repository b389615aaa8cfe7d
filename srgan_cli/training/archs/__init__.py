"""Generator architectures by name: a plain dict of builders; a new architecture is one module plus one row here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.training.archs import srresnet


@dataclass(frozen=True)
class Architecture:
    """A generator family: LR RGB in [0,1] of any size -> x`scale` SR RGB in [-1,1] (tanh).

    Args:
        build: builder taking the architecture's parameters as keywords; returns a functional keras.Model whose
            input is named "lr".
        defaults: every parameter with its default (a config records them all).
        describe: one line for the ONNX metadata, from the parameters.
        scale: the upscaling factor.
        fast: optional export-time variant computing the same function faster: (params) -> (builder kwargs,
            weight mapping from the plain model's weights).
    """

    build: Callable[..., keras.Model]
    defaults: dict[str, Any]
    describe: Callable[[dict[str, Any]], str]
    scale: int = 4
    fast: Callable[[list[Any]], list[Any]] | None = field(default=None)


ARCHITECTURES: dict[str, Architecture] = {
    "srresnet": Architecture(srresnet.build_generator, {"blocks": 16, "channels": 64, "activation": "prelu"},
                             srresnet.describe,
                             fast=srresnet.phase_tail_weights),
}


def get(name: str) -> Architecture:
    """The registered architecture `name`; an unknown one is a one-line error listing the names."""
    if name not in ARCHITECTURES:
        raise UsageError(f"--arch {name!r}: unknown architecture (registered: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[name]


def params_of(name: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture's parameters: its defaults overridden by `given`, which may name only known ones."""
    arch = get(name)
    unknown = sorted(set(given or {}) - set(arch.defaults))
    if unknown:
        raise UsageError(f"architecture {name!r} has no parameter {unknown[0]!r} "
                         f"(it has: {', '.join(sorted(arch.defaults)) or 'none'})")
    return {**arch.defaults, **(given or {})}


def build_generator(name: str, params: dict[str, Any] | None = None, fast: bool = False) -> keras.Model:
    """Build the generator `name` with `params` (defaults filled in); `fast`: its export-time variant."""
    arch = get(name)
    kwargs = params_of(name, params)
    if fast:
        if arch.fast is None:
            raise SrganError(f"architecture {name!r} has no fast variant")
        kwargs["fast"] = True
    return arch.build(**kwargs)


def fast_weights(name: str, weights: list[Any]) -> list[Any]:
    """Map plain-model weights to the fast variant's (identity when the architecture has none)."""
    arch = get(name)
    return arch.fast(weights) if arch.fast else weights


def has_fast_variant(name: str) -> bool:
    return get(name).fast is not None
