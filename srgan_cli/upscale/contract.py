"""The model contract: how a model is fed (layout, value range, scale) and what it must return, from `srgan export`
metadata, flags or a probe. Every refusal is one line that says where the bad value came from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from srgan_cli.errors import SrganError, UsageError

RANGES = {"0,1": (0.0, 1.0), "0,255": (0.0, 255.0), "-1,1": (-1.0, 1.0)}
LAYOUTS = ("NHWC", "NCHW")
FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)", "tensor(bfloat16)")
METADATA = "the model's metadata"
PROBE = "a 16x16 probe"
Amount = TypeVar("Amount", int, float)


@dataclass(frozen=True)
class Contract:
    """How to feed the model.

    Attributes:
        input_name: the name of its one input.
        layout: 'NHWC' or 'NCHW'.
        value_range: (low, high) pixel values the model works in, e.g. (0.0, 1.0).
        scale: output side / input side.
        scale_from: where the scale came from ('--scale', "the model's metadata" or 'a 16x16 probe').
    """

    input_name: str
    layout: str
    value_range: tuple[float, float]
    scale: int
    scale_from: str = METADATA

    def feed(self, lr: np.ndarray) -> dict[str, np.ndarray]:
        """The session's input for an LR batch: float32 (B, h, w, 3) in [0,1] -> this model's range and layout."""
        lo, hi = self.value_range
        batch = lr * (hi - lo) + lo
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def unfeed(self, out: np.ndarray) -> np.ndarray:
        """A checked output batch (`check_result`) back to float32 (B, H, W, 3) in [0,1] (not clipped)."""
        lo, hi = self.value_range
        if self.layout == "NCHW":
            out = out.transpose(0, 2, 3, 1)
        return (out - lo) / (hi - lo)


def _check_input(session: Any, layout: str) -> str:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise SrganError(f"the model has {len(inputs)} inputs; an SR model takes one image tensor")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise SrganError(f"the model's input has rank {len(shape)}; expected a 4-D image batch ({layout})")
    channels = shape[3] if layout == "NHWC" else shape[1]
    if isinstance(channels, int) and channels != 3:
        raise SrganError(f"the model's input has {channels} channels in {layout} layout; expected 3 (RGB)")
    return str(inputs[0].name)


def _check_output(session: Any) -> None:
    """The declared output (where the model declares it) is a float tensor of rank 4."""
    output = session.get_outputs()[0]
    if output.type not in FLOAT_TYPES:
        raise SrganError(f"the model returns {output.type} values; an SR model returns floating-point pixels")
    shape = output.shape
    if shape is not None and len(shape) != 4:
        raise SrganError(f"the model's output has rank {len(shape)} (shape {list(shape)}); "
                         "expected a 4-D image batch")


def _not_sr(scale_text: str) -> str:
    return f"scale {scale_text}: the output is as large as the input, not a super-resolution model"


def _probe_scale(session: Any, name: str, layout: str, lo: float) -> int:
    probe = np.full((1, 16, 16, 3) if layout == "NHWC" else (1, 3, 16, 16), lo, dtype=np.float32)
    try:
        out = session.run(None, {name: probe})[0]
    except Exception as err:
        raise SrganError(f"the model fails on a 16x16 input ({str(err).splitlines()[0][:160]})") from None
    if out.ndim != 4:
        raise SrganError(f"the model maps a 16x16 image to shape {out.shape}: not an SR model")
    h, w = (out.shape[1], out.shape[2]) if layout == "NHWC" else (out.shape[2], out.shape[3])
    if h != w or h % 16:
        raise SrganError(f"the model maps 16x16 to {h}x{w}: not an integer-scale SR model")
    if h == 16:
        raise SrganError(f"the model maps 16x16 to 16x16, {_not_sr('1')}")
    return int(h // 16)


def _metadata_scale(text: str) -> int:
    try:
        scale = int(text)
    except ValueError:
        raise SrganError(f"{METADATA} has scale {text!r}: not an integer; pass --scale N") from None
    if scale == 1:
        raise SrganError(f"{METADATA} has {_not_sr(repr(text))}")
    if scale < 1:
        raise SrganError(f"{METADATA} has scale {text!r}: not a whole number >= 2; pass --scale N")
    return scale


def _layout(flag: str | None, meta: dict[str, str]) -> str:
    if flag is not None:
        if flag.upper() not in LAYOUTS:
            raise UsageError(f"--layout {flag}: use NHWC or NCHW")
        return flag.upper()
    value = meta.get("layout", "NHWC")
    if value.upper() not in LAYOUTS:
        raise SrganError(f"{METADATA} has layout {value!r}, not NHWC or NCHW; pass --layout to override it")
    return value.upper()


def _range(flag: str | None, meta: dict[str, str]) -> tuple[float, float]:
    if flag is not None:
        if flag.replace(" ", "") not in RANGES:
            raise UsageError(f"--range {flag}: use 0,1 or 0,255 or -1,1")
        return RANGES[flag.replace(" ", "")]
    value = meta.get("value_range", "0,1")
    if value.replace(" ", "") not in RANGES:
        raise SrganError(f"{METADATA} has value_range {value!r}, not 0,1, 0,255 or -1,1; "
                         "pass --range to override it")
    return RANGES[value.replace(" ", "")]


def read_contract(session: Any, scale: int | None = None, layout: str | None = None,
                  value_range: str | None = None) -> Contract:
    """The model contract from `srgan export` metadata, overridden by explicit values, else probed.

    Args:
        session: an open onnxruntime.InferenceSession.
        scale, layout, value_range: overrides, as given on the command line ('NHWC'/'NCHW'; '0,1', '0,255' or
            '-1,1').

    Raises:
        UsageError: a malformed override (naming its flag).
        SrganError: the model is not a single-input RGB image model of an integer scale of 2 or more returning
            floats, or its metadata says something impossible (naming the metadata).
    """
    meta = session.get_modelmeta().custom_metadata_map or {}
    if scale is not None and scale < 2:
        raise UsageError(f"--scale {scale}: {_not_sr(str(scale))}" if scale == 1 else f"--scale {scale}: use N >= 2")
    layout_name, value_range_pair = _layout(layout, meta), _range(value_range, meta)
    name = _check_input(session, layout_name)
    _check_output(session)
    if scale is not None:
        return Contract(name, layout_name, value_range_pair, int(scale), "--scale")
    if "scale" in meta:
        return Contract(name, layout_name, value_range_pair, _metadata_scale(meta["scale"]), METADATA)
    return Contract(name, layout_name, value_range_pair,
                    _probe_scale(session, name, layout_name, value_range_pair[0]), PROBE)


def check_result(out: Any, window: tuple[int, int], contract: Contract, batch: int = 1) -> np.ndarray:
    """The model's output for `batch` HxW windows as float32 (batch, H*scale, W*scale, 3) in its layout, or one line
    why not.

    Raises:
        SrganError: not floating point, not rank 4, not the contract's size, or NaN/infinite values.
    """
    out = np.asarray(out)
    if not np.issubdtype(out.dtype, np.floating):
        raise SrganError(f"the model returned {out.dtype} values; an SR model returns floating-point pixels")
    if out.ndim != 4:
        raise SrganError(f"the model returned an output of rank {out.ndim} (shape {list(out.shape)}); "
                         "expected a 4-D image batch")
    height, width = window
    expected = (batch, height * contract.scale, width * contract.scale, 3)
    got = out.shape if contract.layout == "NHWC" else (out.shape[0], out.shape[2], out.shape[3], out.shape[1])
    if tuple(got) != expected:
        raise SrganError(f"the model maps a {width}x{height} window to {got[2]}x{got[1]}x{got[3]}, but its scale is "
                         f"{contract.scale} (from {contract.scale_from}) and an image has 3 channels")
    if not np.isfinite(np.sum(out, dtype=np.float64)):
        raise SrganError("the model returned NaN or infinite values (an fp16 model overflowing, or a broken model)")
    return out.astype(np.float32, copy=False)


def asked_for(session: Any, wanted: bool | None, parse: Callable[[Mapping[str, str]], Amount],
              default: Amount) -> Amount:
    """How much of an optional post-processing step a model's results get (0: none), e.g. its degrid sigma.

    Args:
        session: the open onnxruntime.InferenceSession.
        wanted: True: always (the metadata's amount, else `default`); False: never (the metadata is not read);
            None: as the metadata asks.
        parse: reads the amount from the metadata (0 when it asks for none), raising SrganError on a bad value.
        default: the amount when `wanted` is True and the metadata asks for none.
    """
    if wanted is False:
        return default * 0
    amount = parse(session.get_modelmeta().custom_metadata_map or {})
    return amount or (default if wanted else default * 0)
