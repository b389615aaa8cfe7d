"""ONNX Runtime sessions: device choice without silent fallback, the model contract, tile sizing from free memory.

onnxruntime itself is imported inside the functions that need it, so `srgan --help` stays fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError, UsageError

BYTES_PER_LR_PIXEL = 17_000  # peak ONNX Runtime memory of the 16x64 x4 generator per window LR pixel (measured 16.9 kB)
RANGES = {"0,1": (0.0, 1.0), "0,255": (0.0, 255.0), "-1,1": (-1.0, 1.0)}
LAYOUTS = ("NHWC", "NCHW")


def cpu_count() -> int:
    """CPUs this process may use (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_device(device: str) -> tuple[str, int]:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> (kind, GPU index).

    Raises:
        UsageError: anything else.
    """
    if device in ("auto", "cpu", "cuda"):
        return device, 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return "cuda", int(device[5:])
    raise UsageError(f"--device {device!r}: use auto, cpu, cuda or cuda:N")


def _session_options(ort: Any, threads: int | None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.log_severity_level = 3
    return options


def shrink_options() -> Any:
    """Run options that hand the CPU arena's free memory back to the system at the end of the run."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def _cuda_session(ort: Any, model: str | bytes, options: Any, gpu: int) -> Any:
    """A session really running on the CUDA EP, or None (quietly: no ORT spam on CPU-only machines)."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    if sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl"):
        return None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        ort.preload_dlls()
    ort.set_default_logger_severity(4)
    try:
        # HEURISTIC: cuDNN's default exhaustive algorithm search costs 0.3-1.3 s for every new input shape
        cuda = {"device_id": gpu, "cudnn_conv_algo_search": "HEURISTIC"}
        providers = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
        session = ort.InferenceSession(model, options, providers=providers)
        return session if session.get_providers()[0] == "CUDAExecutionProvider" else None
    except Exception:
        return None
    finally:
        ort.set_default_logger_severity(2)


def open_session(model: str | Path | bytes, device: str = "auto", threads: int | None = None) -> tuple[Any, str]:
    """Open an ONNX Runtime session on the requested device.

    Args:
        model: ONNX file or serialized model.
        device: 'auto' (CUDA when it really works, else CPU), 'cpu', 'cuda' or 'cuda:N'.
        threads: CPU threads (default: the CPUs this process may use).

    Returns:
        (onnxruntime.InferenceSession, the device actually used: 'cpu' or 'cuda:N').

    Raises:
        UsageError: a malformed device.
        SrganError: CUDA asked for and not usable, or not a usable ONNX model.
    """
    import onnxruntime as ort

    kind, gpu = parse_device(device)
    model = str(model) if isinstance(model, Path) else model
    options = _session_options(ort, threads)
    if kind in ("auto", "cuda"):
        session = _cuda_session(ort, model, options, gpu)
        if session is not None:
            return session, f"cuda:{gpu}"
        if kind == "cuda":
            raise SrganError(f"--device {device}: CUDA is not usable here (needs an NVIDIA GPU, onnxruntime-gpu and "
                             "CUDA 13 / cuDNN 9: pip install 'onnxruntime-gpu[cuda,cudnn]'); use --device cpu")
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]), "cpu"
    except Exception as err:
        raise SrganError(f"not a usable ONNX model ({str(err).splitlines()[0][:200]})") from None


@dataclass(frozen=True)
class Contract:
    """How to feed the model.

    Attributes:
        input_name: the name of its one input.
        layout: 'NHWC' or 'NCHW'.
        value_range: (low, high) pixel values the model works in, e.g. (0.0, 1.0).
        scale: output side / input side.
    """

    input_name: str
    layout: str
    value_range: tuple[float, float]
    scale: int


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
    return int(h // 16)


def _metadata_scale(meta: dict[str, str]) -> int | None:
    if "scale" not in meta:
        return None
    try:
        return int(meta["scale"])
    except ValueError:
        raise SrganError(f"the model's metadata has scale {meta['scale']!r}: not an integer; "
                         "pass --scale N") from None


def read_contract(session: Any, scale: int | None = None, layout: str | None = None,
                  value_range: str | None = None) -> Contract:
    """The model contract from `srgan export` metadata, overridden by explicit values, else probed.

    Args:
        session: an open onnxruntime.InferenceSession.
        scale, layout, value_range: overrides ('NHWC'/'NCHW'; '0,1', '0,255' or '-1,1').

    Raises:
        UsageError: a malformed override.
        SrganError: not a single-input RGB image model of an integer scale.
    """
    meta = session.get_modelmeta().custom_metadata_map or {}
    layout = (layout or meta.get("layout") or "NHWC").upper()
    if layout not in LAYOUTS:
        raise UsageError(f"--layout {layout}: use NHWC or NCHW")
    range_key = (value_range or meta.get("value_range") or "0,1").replace(" ", "")
    if range_key not in RANGES:
        raise UsageError(f"--range {range_key}: use 0,1 or 0,255 or -1,1")
    name = _check_input(session, layout)
    scale = scale or _metadata_scale(meta) or _probe_scale(session, name, layout, RANGES[range_key][0])
    return Contract(name, layout, RANGES[range_key], int(scale))


def auto_tile(pad: int, budget_bytes: int | None = None) -> int:
    """Largest kept tile whose window fits the memory budget (default: 1/4 of available memory, at most 2 GB).

    Args:
        pad: context pixels per tile side.
        budget_bytes: memory one window may take.
    """
    if budget_bytes is None:
        budget_bytes = min(2 << 30, _available_memory() // 4)
    side = int((budget_bytes / BYTES_PER_LR_PIXEL) ** 0.5)
    return max(32, side - 2 * pad)


def _available_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30
