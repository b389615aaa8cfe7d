"""Shared helpers of the benchmark scripts: argument parsing, timing by best-of-N, and table/JSON output."""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per case (the best is reported)")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    return p


def model_path(args):
    from srgan_cli.upscale.models import default_model_path
    path = args.model or default_model_path()
    if path is None:
        sys.exit("no model: pass --model")
    return path


def best_time(fn, repeat=3, warmup=1):
    """Best wall time of `repeat` calls after `warmup` untimed ones (best-of-N resists a noisy shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def alternating_best(runs: dict, repeat: int):
    """Best time of each callable over `repeat` rounds that take turns (fair on a busy machine), after a warm-up."""
    best = {}
    for name, run in runs.items():
        best[name] = best_time(run, repeat=1, warmup=1)
    for _ in range(repeat - 1):
        for name, run in runs.items():
            best[name] = min(best[name], best_time(run, repeat=1, warmup=0))
    return best


def test_image(height, width, seed=0):
    """A photo-like float32 RGB image in [0,1]: smooth shapes plus texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / (9 + 3 * c)) * np.cos(yy / (7 + c)) for c in range(3)], axis=2)
    return np.clip(0.5 + 0.35 * base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


def machine():
    return f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, {platform.system()}"


def report(title, rows, args, extra=None):
    """Print rows (list of dicts) as an aligned table, or one JSON document with --json."""
    if args.json:
        print(json.dumps({"benchmark": title, "machine": machine(), "rows": rows, **(extra or {})}, indent=2))
        return
    print(f"# {title}  ({machine()})")
    keys = list(rows[0])
    widths = [max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=False)))
    for r in rows:
        print("  ".join(_fmt(r[k]).ljust(w) for k, w in zip(keys, widths, strict=False)))
    for key, value in (extra or {}).items():
        print(f"{key}: {_fmt(value)}")


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_measured(cmd):
    """(seconds, peak RSS bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024
