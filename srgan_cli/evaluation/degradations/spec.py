"""The evaluation --degrade spec: its grammar (SPEC_HELP), parsing it into steps and applying them to an LR image."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation.degradations.ops import _to_pixels, _to_planes, to_uint8
from srgan_cli.evaluation.degradations.steps import Jpeg, Noise, Step, _apply_step, iso_blur

SPEC_HELP = (
    "comma-separated STEP:VALUE list applied in order: jpeg:Q (JPEG quality, integer 1..100), "
    "noise:S / graynoise:S (Gaussian colour / gray noise, sigma in 8-bit levels > 0), "
    "poisson:S (Poisson noise, scale > 0), blur:S (isotropic Gaussian blur, sigma in px > 0); e.g. noise:6,jpeg:75"
)


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


def parse_spec_list(text: str) -> list[tuple[Step, ...]]:
    """A ';'-separated list of specs (`srgan train --val-degrade`), 'clean' for none; empty text: clean only.

    Raises:
        UsageError: a malformed spec (see `parse_spec`).
    """
    if not text:
        return [()]
    return [parse_spec(spec) if spec.strip() != "clean" else () for spec in text.split(";")]


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
