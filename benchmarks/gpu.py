"""GPU throughput (output MP/s) of the model under ONNX Runtime: fp32 and fp16 on the CUDA EP, the whole image vs
tiles vs batched tiles (several windows per run), I/O binding on/off, the TensorRT EP when present, `srgan`'s own
Upscaler on CUDA, the fp16 output checked against fp32, and batched tiles on the CPU EP (does batching windows help
there?). Finishes in under 5 minutes on an H200 (`--budget-s` skips what is left). Imports no TensorFlow: numpy,
onnxruntime, onnx, Pillow and srgan's upscale side only. `--dry-run` runs the same code paths on the CPU EP with a
tiny built-in model in seconds (the test suite runs it); `--cpu-only` runs just the CPU batching with the real model.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import best_time, model_path, parser, report, test_image

from srgan_cli.upscale.tiling import plan_windows

GPU_IMAGE = (768, 1024)  # LR height, width: 12.6 output MP
CPU_IMAGE = (320, 480)
DRY_IMAGE = (48, 64)


def tiny_model(scale: int = 4) -> bytes:
    """An x4 NHWC [0,1] model (two 3x3 convs, pixel shuffle) with srgan metadata, for --dry-run."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    out = 3 * scale * scale
    inits = [numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), name)
             for name, shape in (("w0", (8, 3, 3, 3)), ("w1", (out, 8, 3, 3)))]
    inits += [numpy_helper.from_array(np.zeros(n, np.float32), name) for name, n in (("b0", 8), ("b1", out))]
    nodes = [helper.make_node("Transpose", ["lr"], ["x"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["x", "w0", "b0"], ["h"], pads=[1] * 4),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w1", "b1"], ["c"], pads=[1] * 4),
             helper.make_node("DepthToSpace", ["c"], ["up"], blocksize=scale, mode="DCR"),
             helper.make_node("Sigmoid", ["up"], ["s"]),
             helper.make_node("Transpose", ["s"], ["sr"], perm=[0, 2, 3, 1])]
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", h, w, 3]) for name, h, w in
          (("lr", "H", "W"), ("sr", "H4", "W4"))]
    graph = helper.make_graph(nodes, "tiny", io[:1], io[1:], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (("scale", scale), ("layout", "NHWC"), ("value_range", "0,1")):
        model.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fp16_model(model: bytes) -> bytes:
    """float16 weights and compute, float32 input and output (as `srgan export --fp16`)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx.load_from_string(model), keep_io_types=True)
    graph = converted.graph
    known = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(range(len(graph.node))), []
    while pending:  # the converter appends its input Casts last: restore topological order
        ready = [i for i in pending if all(name in known for name in graph.node[i].input)]
        if not ready:
            raise RuntimeError("fp16 conversion left a graph cycle")
        for i in ready:
            known.update(graph.node[i].output)
            ordered.append(type(graph.node[i])())
            ordered[-1].CopyFrom(graph.node[i])
        pending = [i for i in pending if i not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
    return converted.SerializeToString()


class Runner:
    """One ONNX Runtime session on one EP; runs NHWC [0,1] batches, with or without I/O binding.

    Args:
        model: serialized ONNX model.
        provider: 'cuda', 'tensorrt' or 'cpu'.
        threads: CPU threads (CPU EP).
        fp16: ask TensorRT for fp16 kernels.
        cache: TensorRT engine cache folder.
    """

    def __init__(self, model: bytes, provider: str, threads: int = 2, fp16: bool = False,
                 cache: Path | None = None) -> None:
        import onnxruntime as ort

        self.ort = ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        cuda = ("CUDAExecutionProvider", {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC"})
        providers: dict[str, list[Any]] = {
            "cpu": ["CPUExecutionProvider"],
            "cuda": [cuda, "CPUExecutionProvider"],
            "tensorrt": [("TensorrtExecutionProvider", {"device_id": 0, "trt_fp16_enable": fp16,
                                                        "trt_engine_cache_enable": True,
                                                        "trt_engine_cache_path": str(cache or ".")}),
                         cuda, "CPUExecutionProvider"]}
        self.session = ort.InferenceSession(model, options, providers=providers[provider])
        self.device = "cpu" if provider == "cpu" else "cuda"
        if provider != "cpu" and self.session.get_providers()[0] == "CPUExecutionProvider":
            raise RuntimeError(f"{provider} EP not active")
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.scale = int(meta.get("scale", 4))
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray, binding: bool = False, keep_on_device: bool = False) -> np.ndarray | None:
        """(B, h, w, 3) float32 -> (B, h*s, w*s, 3) float32 (None when the output is left on the device)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not binding:
            return self.session.run(None, {self.input: batch})[0]
        io = self.session.io_binding()
        io.bind_ortvalue_input(self.input, self.ort.OrtValue.ortvalue_from_numpy(batch, self.device, 0))
        io.bind_output(self.output, self.device, 0)
        self.session.run_with_iobinding(io)
        return None if keep_on_device else io.get_outputs()[0].numpy()


def upscale(runner: Runner, image: np.ndarray, tile: int, pad: int, batch: int = 1, binding: bool = False,
            keep_on_device: bool = False) -> np.ndarray:
    """Upscale HxWx3 by windows of one shape (tile 0: whole image), `batch` windows per run."""
    height, width = image.shape[:2]
    s = runner.scale
    out = np.zeros((height * s, width * s, 3), np.float32)
    windows = plan_windows(height, width, tile, pad)
    for start in range(0, len(windows), batch):
        group = windows[start:start + batch]
        crops = [image[w.wy:w.wy + w.height, w.wx:w.wx + w.width] for w in group]
        crops += [crops[-1]] * (batch - len(crops))  # one batch shape for every run
        result = runner.run(np.stack(crops), binding, keep_on_device)
        if result is None:
            continue
        for w, res in zip(group, result, strict=False):
            top, left = (w.y0 - w.wy) * s, (w.x0 - w.wx) * s
            out[w.y0 * s:w.y1 * s, w.x0 * s:w.x1 * s] = res[top:top + (w.y1 - w.y0) * s,
                                                           left:left + (w.x1 - w.x0) * s]
    return out


class Bench:
    """Collects rows and stops measuring once the time budget is spent."""

    def __init__(self, args: argparse.Namespace, out_pixels: int) -> None:
        self.args, self.out_pixels, self.rows = args, out_pixels, []
        self.deadline = time.perf_counter() + args.budget_s

    def case(self, group: str, name: str, fn: Callable[[], object], pixels: int | None = None) -> None:
        if time.perf_counter() > self.deadline:
            self.rows.append({"group": group, "case": name, "seconds": "-", "out_MP_per_s": "skipped (budget)"})
            return
        try:
            seconds = best_time(fn, self.args.repeat)
        except Exception as err:  # one failing case (EP, memory) must not lose the others
            self.rows.append({"group": group, "case": name, "seconds": "-",
                              "out_MP_per_s": f"failed: {str(err).splitlines()[0][:80]}"})
            return
        self.rows.append({"group": group, "case": name, "seconds": seconds,
                          "out_MP_per_s": (pixels or self.out_pixels) / seconds / 1e6})


def ep_cases(bench: Bench, label: str, runner: Runner, image: np.ndarray, tile: int, pad: int,
             batches: tuple[int, ...]) -> None:
    """Whole image vs tiles vs batched tiles, I/O binding off/on, on one session."""
    bench.case(label, "whole image", lambda: upscale(runner, image, 0, pad))
    bench.case(label, "whole image, io_binding", lambda: upscale(runner, image, 0, pad, binding=True))
    for batch in batches:
        bench.case(label, f"tiles {tile}+{pad}, batch {batch}", lambda b=batch: upscale(runner, image, tile, pad, b))
        bench.case(label, f"tiles {tile}+{pad}, batch {batch}, io_binding",
                   lambda b=batch: upscale(runner, image, tile, pad, b, binding=True))
    bench.case(label, f"tiles {tile}+{pad}, batch {batches[-1]}, io_binding, output left on the device",
               lambda: upscale(runner, image, tile, pad, batches[-1], binding=True, keep_on_device=True))


def fp16_check(fp32: Runner, fp16: Runner, image: np.ndarray, tile: int, pad: int) -> dict[str, float]:
    """fp16 against fp32 on the same input, in 8-bit levels (whole image and tiles)."""
    result = {}
    for name, t in (("whole", 0), ("tiles", tile)):
        a, b = (np.round(np.clip(upscale(r, image, t, pad), 0, 1) * 255) for r in (fp32, fp16))
        mse = float(np.mean((a - b) ** 2))
        result[f"fp16_{name}_max_diff_levels"] = float(np.abs(a - b).max())
        result[f"fp16_{name}_psnr_vs_fp32"] = 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return result


def srgan_upscaler_case(bench: Bench, model: Path | None, image: np.ndarray, device: str, tile: int) -> None:
    """`srgan`'s own Upscaler (what `srgan upscale --device cuda` runs), when its API is importable."""
    try:
        from srgan_cli.upscale.inference import Upscaler

        upscaler = Upscaler(model, device=device, tile=tile)
    except Exception as err:
        bench.rows.append({"group": "srgan Upscaler", "case": device, "seconds": "-",
                           "out_MP_per_s": f"failed: {str(err).splitlines()[0][:80]}"})
        return
    bench.case("srgan Upscaler", f"{device}, tile {tile}", lambda: upscaler.upscale_array(image, np.uint8))


def cpu_batching(bench: Bench, model: bytes, image: np.ndarray, threads: int, tiles: tuple[int, ...],
                 pad: int) -> None:
    """Does running several windows per call help on the CPU EP? Cases take turns (a busy CPU drifts)."""
    runner = Runner(model, "cpu", threads)
    pixels = image.shape[0] * image.shape[1] * runner.scale ** 2
    cases = {f"tiles {t}+{pad}, batch {b}": (lambda t=t, b=b: upscale(runner, image, t, pad, b))
             for t in tiles for b in (1, 2, 4)}
    best = {name: best_time(fn, repeat=1) for name, fn in cases.items()}
    for _ in range(bench.args.repeat - 1):
        for name, fn in cases.items():
            best[name] = min(best[name], best_time(fn, repeat=1, warmup=0))
    for name, seconds in best.items():
        bench.rows.append({"group": f"cpu ({threads} threads)", "case": name, "seconds": seconds,
                           "out_MP_per_s": pixels / seconds / 1e6})


def gpu_name() -> str:
    if shutil.which("nvidia-smi"):
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, check=False)
        return found.stdout.strip().splitlines()[0] if found.stdout.strip() else "unknown GPU"
    return "no nvidia-smi"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--dry-run", action="store_true", help="CPU EP, tiny built-in model, small image (seconds)")
    p.add_argument("--tile", type=int, default=256, help="kept tile side (LR px)")
    p.add_argument("--pad", type=int, default=16, help="context per tile side")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8], help="windows per run")
    p.add_argument("--threads", type=int, default=2, help="CPU EP threads (the CPU batching cases)")
    p.add_argument("--no-trt", action="store_true", help="skip the TensorRT EP (engine builds take a while)")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU batching cases")
    p.add_argument("--cpu-only", action="store_true", help="only the CPU batching cases, with the real model")
    p.add_argument("--budget-s", type=float, default=270.0, help="stop starting new cases after this long")
    args = p.parse_args()
    import onnxruntime as ort

    dry = args.dry_run
    fp32 = tiny_model() if dry else Path(model_path(args)).read_bytes()
    if args.cpu_only:
        bench = Bench(args, 0)
        cpu_batching(bench, fp32, test_image(*CPU_IMAGE), args.threads, (256, 128), args.pad)
        report("cpu batched tiles", bench.rows, args, {"tensorflow_imported": "tensorflow" in sys.modules})
        return
    tile, pad = (16, 4) if dry else (args.tile, args.pad)
    image = test_image(*(DRY_IMAGE if dry else GPU_IMAGE))
    provider = "cpu" if dry else "cuda"
    runner32 = Runner(fp32, provider, args.threads)
    bench = Bench(args, image.shape[0] * image.shape[1] * runner32.scale ** 2)
    runner16 = Runner(fp16_model(fp32), provider, args.threads)
    extra: dict[str, Any] = {"device": "cpu (dry run)" if dry else gpu_name(), "onnxruntime": ort.__version__,
                             "providers": ort.get_available_providers(),
                             **fp16_check(runner32, runner16, image, tile, pad)}
    ep_cases(bench, f"{provider} fp32", runner32, image, tile, pad, tuple(args.batches))
    ep_cases(bench, f"{provider} fp16", runner16, image, tile, pad, tuple(args.batches))
    if not dry:
        srgan_upscaler_case(bench, args.model, image, "cuda", tile)
    trt_time = bench.deadline - time.perf_counter() > 120  # an engine build can take a minute or two
    if not dry and not args.no_trt and trt_time and "TensorrtExecutionProvider" in ort.get_available_providers():
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            try:
                trt = Runner(fp32, "tensorrt", fp16=True, cache=Path(cache))
                upscale(trt, image, tile, pad, args.batches[-1])  # builds the engine for this one shape
                extra["trt_build_s"] = time.perf_counter() - started
                bench.case("tensorrt fp16", f"tiles {tile}+{pad}, batch {args.batches[-1]}",
                           lambda: upscale(trt, image, tile, pad, args.batches[-1]))
            except Exception as err:
                extra["tensorrt"] = f"failed: {str(err).splitlines()[0][:120]}"
    else:
        extra["tensorrt"] = "not measured (dry run, --no-trt, EP absent or under 2 min of budget left)"
    if not args.no_cpu:
        cpu_image = image if dry else test_image(*CPU_IMAGE)
        cpu_batching(bench, fp32, cpu_image, args.threads, (tile,) if dry else (256, 128), pad)
    extra["tensorflow_imported"] = "tensorflow" in sys.modules
    report("gpu throughput" + (" (dry run: CPU EP, tiny model)" if dry else ""), bench.rows, args, extra)


if __name__ == "__main__":
    main()
