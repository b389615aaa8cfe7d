"""`--precision`: which copy of a model runs (the fp32 file, or `<stem>_int8.onnx` / `<stem>_fp16.onnx` beside it)
and why, with the one-off int8-vs-fp32 timing cached per machine. Imports numpy and onnxruntime only.

`auto` takes int8 on the CPU only when the int8 file is there, the CPU has VNNI or AMX int8 dot products, and int8
runs at least `MIN_SPEEDUP` times fp32 on this machine at this thread count (timed once, then cached); on CUDA it
keeps fp32 (fp16 is used only when asked for: its GPU speed is not measured yet).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import models
from srgan_cli.upscale.models import VARIANTS, resolve_model
from srgan_cli.upscale.session import cpu_count, cuda_possible, open_session, parse_device

PRECISIONS = ("auto", "fp32", "int8", "fp16")
MIN_SPEEDUP = 2.0  # issue 17's bar for int8 against fp32, end to end on this CPU
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # x86 int8 dot products without u8s8 saturation
TIMING_WINDOW = 128  # LR side of the one-off timing window
TIMING_ROUNDS = 3


@dataclass(frozen=True)
class Choice:
    """The model file that runs and why.

    Attributes:
        precision: 'fp32', 'int8' or 'fp16': what runs.
        path: the ONNX file that runs.
        reason: why, in a few words (for the -v line and `--version`).
        fallback: True when the precision asked for explicitly is not available and fp32 runs instead.
    """

    precision: str
    path: Path
    reason: str
    fallback: bool = False

    def line(self) -> str:
        """'precision: fp32 (auto: ...)'."""
        return f"precision: {self.precision} ({self.reason})"


def check_precision(precision: str) -> str:
    """`precision` itself if it is one of `PRECISIONS`.

    Raises:
        UsageError: anything else.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: use {', '.join(PRECISIONS)}")
    return precision


def precision_of(model: Path) -> str:
    """'int8' or 'fp16' for a `<stem>_int8.onnx` / `<stem>_fp16.onnx` file, else 'fp32'."""
    return next((p for p in VARIANTS if model.stem.endswith(f"_{p}")), "fp32")


def variant_path(model: Path, precision: str) -> Path:
    """Where the `precision` copy of the fp32 `model` lives: `<stem>_<precision>.onnx` beside it."""
    return model if precision == "fp32" else model.with_name(f"{model.stem}_{precision}.onnx")


def cpu_int8_features(cpuinfo: str | None = None) -> list[str]:
    """The CPU's int8 dot-product features (`INT8_FLAGS` found in /proc/cpuinfo); ['not x86'] off x86.

    Args:
        cpuinfo: /proc/cpuinfo text (default: read it; unreadable counts as none).
    """
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
            return ["not x86"]  # ARM's int8 dot products (SDOT/I8MM) need no 7-bit weights
        cpuinfo = "\n".join(_cpuinfo_lines())  # unreadable counts as none
    words = set(cpuinfo.split())
    return [flag for flag in INT8_FLAGS if flag in words]


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether int8 dot products cannot saturate here (x86 with AVX-VNNI / AVX-512 VNNI / AMX, or not x86)."""
    return bool(cpu_int8_features(cpuinfo))


def choose(requested: str, model: Path, device: str, threads: int, measure: bool = True,
           cache: Path | None = None) -> Choice:
    """The file to run for `--precision requested` on `device`.

    Args:
        requested: one of `PRECISIONS`.
        model: the model as resolved (`resolve_model`): an fp32 file or itself a `_int8` / `_fp16` file.
        device: 'cpu' or 'cuda:N', where it will run.
        threads: CPU threads it will run with (the timing depends on them).
        measure: time int8 against fp32 when no timing is cached (False: report that none is).
        cache: the timing cache file (default: `timing_cache()`).

    Raises:
        UsageError: an unknown precision, or an explicit one that contradicts a `_int8` / `_fp16` model file.
    """
    check_precision(requested)
    own = precision_of(model)
    if own != "fp32":
        if requested not in ("auto", own):
            raise UsageError(f"--precision {requested}: {model.name} is itself the {own} model; pass its fp32 model")
        return Choice(own, model, "the model file given" if requested == own else f"auto: {model.name} is {own}")
    if requested == "fp32":
        return Choice("fp32", model, "asked for")
    if requested in VARIANTS:
        wanted = variant_path(model, requested)
        if wanted.is_file():
            old_cpu = requested == "int8" and device == "cpu" and not cpu_int8_features()
            return Choice(requested, wanted, "asked for" + ("; this CPU has no VNNI/AMX: slower than fp32, and 8-bit "
                                                            "weights may saturate" if old_cpu else ""))
        return Choice("fp32", model, f"no {wanted.name} beside {model.name}: running fp32", fallback=True)
    if device != "cpu":
        return Choice("fp32", model, f"auto on {device}: fp16 is used only when asked for (--precision fp16)")
    return _auto_cpu(model, threads, measure, cache)


def _auto_cpu(model: Path, threads: int, measure: bool, cache: Path | None) -> Choice:
    int8 = variant_path(model, "int8")
    if not int8.is_file() and model.parent in models.WEIGHTS_DIRS:
        return Choice("fp32", model, f"auto: no int8 copy of {model.stem} is shipped now, see "
                                     "weights/README.md")
    if not int8.is_file():
        return Choice("fp32", model, f"auto: no {int8.name} beside {model.name}")
    features = cpu_int8_features()
    if not features:
        return Choice("fp32", model, "auto: this CPU has no VNNI/AMX int8 dot products, int8 is not faster here")
    speedup = cached_speedup(model, int8, threads, cache)
    if speedup is None and not measure:
        return Choice("fp32", model, "auto: int8 not timed on this machine yet (the first srgan upscale times it)")
    if speedup is None:
        try:
            speedup = time_speedup(model, int8, threads)
        except SrganError as err:
            return Choice("fp32", model, f"auto: {int8.name} does not run here ({err})")
        store_speedup(model, int8, threads, speedup, cache)
    timed = f"int8 ran {speedup:.2f}x fp32 on this CPU ({', '.join(features)}; {threads} threads)"
    if speedup < MIN_SPEEDUP:
        return Choice("fp32", model, f"auto: {timed}, below the {MIN_SPEEDUP:g}x needed")
    return Choice("int8", int8, f"auto: {timed}")


def open_model(model: str | Path | None, device: str = "auto", threads: int | None = None,
               precision: str = "fp32") -> tuple[Any, str, Choice]:
    """Resolve a model, pick its precision for the device it will run on, and open it.

    Args:
        model: ONNX file, shipped model name, or None for the shipped default.
        device: 'auto', 'cpu', 'cuda' or 'cuda:N'.
        threads: CPU threads (default: the CPUs this process may use).
        precision: one of `PRECISIONS`.

    Returns:
        (onnxruntime.InferenceSession, the device used, the `Choice` made).

    Raises:
        UsageError: a bad device or precision, or no model given and none shipped.
        SrganError: the model cannot be found or opened, or CUDA was asked for and is not usable.
    """
    check_precision(precision)
    path = resolve_model(model)
    threads = threads or cpu_count()
    likely = "cuda" if parse_device(device)[0] != "cpu" and cuda_possible() else "cpu"
    choice = choose(precision, path, likely, threads)
    session, used = open_session(choice.path, device, threads)
    if used == "cpu" and likely != "cpu":  # CUDA looked usable but is not: decide again for the CPU
        again = choose(precision, path, "cpu", threads)
        if again.path != choice.path:
            session, used = open_session(again.path, "cpu", threads)
        choice = again
    return session, used, choice


def version_line() -> str:
    """What `--precision auto` runs here for the shipped default model, and why (for `srgan --version`; never times).
    """
    default = models.default_model_path()
    if default is None:
        return "precision auto: fp32 (no model shipped)"
    choice = choose("auto", default, "cpu", cpu_count(), measure=False)
    cuda = ", fp32 on CUDA" if cuda_possible() else ""
    return f"precision auto: {choice.precision} on this CPU for {default.stem} ({choice.reason}){cuda}"


def timing_cache() -> Path:
    """The per-machine timing cache: $XDG_CACHE_HOME/srgan/precision.json (default ~/.cache/srgan/)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srgan" / "precision.json"


def _timing_key(fp32: Path, int8: Path, threads: int) -> str:
    """What a timing depends on: this CPU, the thread count, ONNX Runtime's version and both files."""
    import onnxruntime as ort

    def stamp(path: Path) -> list[Any]:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    cpu = next((line for line in _cpuinfo_lines() if line.startswith("model name")), platform.processor())
    parts = [cpu, cpu_int8_features(), threads, ort.__version__, stamp(fp32), stamp(int8)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _read_cache(cache: Path) -> dict[str, Any]:
    try:
        found = json.loads(cache.read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_speedup(fp32: Path, int8: Path, threads: int, cache: Path | None = None) -> float | None:
    """The int8/fp32 speed ratio timed earlier on this machine for these files and threads, or None."""
    entry = _read_cache(cache or timing_cache()).get(_timing_key(fp32, int8, threads))
    return float(entry["speedup"]) if isinstance(entry, dict) and "speedup" in entry else None


def store_speedup(fp32: Path, int8: Path, threads: int, speedup: float, cache: Path | None = None) -> None:
    """Remember a timing (best effort: an unwritable cache only means timing again next time)."""
    cache = cache or timing_cache()
    entries = _read_cache(cache)
    entries[_timing_key(fp32, int8, threads)] = {"speedup": round(speedup, 3), "fp32": fp32.name,
                                                  "int8": int8.name, "threads": threads, "measured": time.time()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        part = cache.with_name(f".{cache.name}.{os.getpid()}.part")
        part.write_text(json.dumps(entries, indent=1))
        os.replace(part, cache)  # a cache, not a user file: replacing it is its purpose
    except OSError:
        pass


def time_speedup(fp32: Path, int8: Path, threads: int, side: int = TIMING_WINDOW) -> float:
    """fp32 time / int8 time on one side x side window, alternating runs, best of `TIMING_ROUNDS` each."""
    from srgan_cli.upscale.contract import read_contract

    window = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    runs = []
    for path in (fp32, int8):
        session = open_session(path, "cpu", threads)[0]
        feed = read_contract(session, None, None, None).feed(window[None])
        session.run(None, feed)  # warm-up: first-run allocations and kernel choice
        runs.append((session, feed))
    best = [float("inf"), float("inf")]
    for _ in range(TIMING_ROUNDS):
        for i, (session, feed) in enumerate(runs):
            start = time.perf_counter()
            session.run(None, feed)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0] / best[1]
