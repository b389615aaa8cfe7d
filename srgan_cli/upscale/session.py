"""ONNX Runtime sessions: device choice without silent fallback, tile sizing from available memory (host or GPU),
out-of-memory errors recognised. The model contract is `srgan_cli.upscale.contract`.

onnxruntime itself is imported inside the functions that need it, so `srgan --help` stays fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError, UsageError

BYTES_PER_LR_PIXEL = 17_000  # peak ONNX Runtime memory of the 16x64 x4 generator per window LR pixel (measured 16.9 kB)
INT8_MEMORY_SHARE = 0.39  # its int8 copy's peak RSS grows 3.7 kB per window LR pixel against fp32's 9.5 kB
MEMINFO = Path("/proc/meminfo")
HOST_BUDGET = (4, 2 << 30)  # --tile auto on the CPU: a quarter of the available memory, at most 2 GB
GPU_BUDGET = (2, 8 << 30)  # on a GPU: half its free memory, at most 8 GB
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
OUT_OF_MEMORY = ("failed to allocate memory", "out of memory", "bad_alloc", "alloc_failed", "cudaerrormemoryallocation")


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
    if re.fullmatch(r"cuda:[0-9]+", device):
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


def cuda_possible() -> bool:
    """Whether a CUDA session may work here: the CUDA EP is installed and (on Linux) an NVIDIA driver is present."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    return not (sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl"))


def _cuda_session(ort: Any, model: str | bytes, options: Any, gpu: int) -> Any:
    """A session really running on the CUDA EP, or None (quietly: no ORT spam on CPU-only machines)."""
    if not cuda_possible():
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


def is_out_of_memory(err: BaseException) -> bool:
    """An exception that says memory ran out (MemoryError, or ONNX Runtime's CPU or CUDA allocation failures)."""
    return isinstance(err, MemoryError) or any(words in str(err).lower() for words in OUT_OF_MEMORY)


def available_memory() -> int:
    """Bytes of host memory available to new allocations: MemAvailable (free plus reclaimable cache), not MemFree;
    4 GiB where the system does not say (`measured_available_memory`)."""
    measured = measured_available_memory()
    return 4 << 30 if measured is None else measured


def measured_available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, else the free physical pages, else None (the system does not say)."""
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", MEMINFO.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1)) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_free_memory(gpu: int) -> int | None:
    """Free memory of NVIDIA GPU `gpu` in bytes (from nvidia-smi), or None where it cannot be asked."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i",
                               str(gpu)], capture_output=True, text=True, timeout=10, check=True)
        return int(done.stdout.split()[0]) << 20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def tile_budget(device: str = "cpu") -> tuple[int, str]:
    """(bytes one window may take, where that figure came from) for --tile auto on `device` ('cpu' or 'cuda:N')."""
    if device.startswith("cuda:"):
        free = gpu_free_memory(int(device[5:]))
        if free is not None:
            share, cap = GPU_BUDGET
            return min(cap, free // share), f"1/{share} of {free / 1e9:.1f} GB free on {device}, at most {cap >> 30} GB"
    share, cap = HOST_BUDGET
    available = available_memory()
    return min(cap, available // share), f"1/{share} of {available / 1e9:.1f} GB available, at most {cap >> 30} GB"


def auto_tile(pad: int, budget_bytes: int | None = None, precision: str = "fp32") -> int:
    """Largest kept tile whose window fits the memory budget (default: that of the CPU, see `tile_budget`).

    Args:
        pad: context pixels per tile side.
        budget_bytes: memory one window may take.
        precision: the precision that runs ('int8' windows take INT8_MEMORY_SHARE of fp32's memory).
    """
    if budget_bytes is None:
        budget_bytes = tile_budget("cpu")[0]
    per_pixel = BYTES_PER_LR_PIXEL * (INT8_MEMORY_SHARE if precision == "int8" else 1.0)
    side = int((budget_bytes / per_pixel) ** 0.5)
    return max(32, side - 2 * pad)


def usable_providers() -> tuple[list[str], list[str]]:
    """(ONNX Runtime execution providers usable here, those installed but needing a GPU this machine lacks)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    no_gpu = sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl")
    lacking = [p for p in available if no_gpu and p in GPU_PROVIDERS]
    return [p for p in available if p not in lacking], lacking
