"""int8 vs fp32, side by side in one run: `srgan upscale --threads 2` on a 480x320 photo, each model in its own
process at its default tile (--tile: one for both), runs alternating (best of N): wall time, output MP/s, peak RSS
and the speed ratio; a smooth sky gradient for banding (largest difference and LR-grid error of int8 against fp32);
with --eval-root, the Y-PSNR drop and the NIQE change on Set5, Set14 and BSD100 (`srgan evaluate`'s protocol).
Targets: >= 2.0x, <= 0.05 dB, NIQE +-0.1, peak RSS no higher than fp32."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import model_path, parser, report, run_measured, test_image
from PIL import Image

SETS = ("Set5", "Set14", "BSD100")
SIZE = (480, 320)  # LR width, height


def photo(path: Path, source: Path | None) -> Path:
    """A 480x320 LR photo: `source` centre-cropped and resized, else a photo-like synthetic image."""
    if source is None:
        image = Image.fromarray(np.round(test_image(SIZE[1], SIZE[0]) * 255).astype(np.uint8))
    else:
        image = Image.open(source).convert("RGB")
        ratio = max(SIZE[0] / image.width, SIZE[1] / image.height)
        image = image.resize((round(image.width * ratio), round(image.height * ratio)), Image.Resampling.BICUBIC)
        left, top = (image.width - SIZE[0]) // 2, (image.height - SIZE[1]) // 2
        image = image.crop((left, top, left + SIZE[0], top + SIZE[1]))
    image.save(path)
    return path


def sky(height: int = 320, width: int = 480) -> np.ndarray:
    """A flat sky: a smooth vertical gradient, faint soft clouds and a little sensor noise (uint8 RGB)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = yy / height
    clouds = 0.03 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    base = np.stack([0.35 + 0.3 * t, 0.55 + 0.25 * t, 0.85 + 0.1 * t], axis=2) + clouds[..., None]
    return np.clip(np.round((base + rng.normal(0, 0.002, base.shape)) * 255), 0, 255).astype(np.uint8)


def upscale_cmd(model: Path, source: Path, out: Path, threads: int, tile: str = "default") -> list[str]:
    """`srgan upscale` running this very file: an fp32 file with an int8 copy beside it runs as fp32, not auto;
    `tile` 'default' leaves each precision its own default tile."""
    from srgan_cli.upscale.precision import precision_of

    return [sys.executable, "-m", "srgan_cli", "upscale", str(source), "-o", str(out), "--model", str(model),
            "--device", "cpu", "--threads", str(threads), "--precision", precision_of(model), "--tile", tile, "-q",
            "--overwrite"]


def speed_rows(models: dict[str, Path], source: Path, tmp: Path, args: argparse.Namespace) -> list[dict]:
    """Alternating runs of each model through `srgan upscale`; best time and largest RSS of each."""
    best = {name: float("inf") for name in models}
    peak = dict.fromkeys(models, 0)
    for _ in range(args.repeat + 1):  # the first round warms the page cache; it still counts for RSS
        for name, model in models.items():
            seconds, rss = run_measured(upscale_cmd(model, source, tmp / f"{name}.png", args.threads, args.tile))
            best[name], peak[name] = min(best[name], seconds), max(peak[name], rss)
    out_mp = SIZE[0] * SIZE[1] * 16 / 1e6
    fp32 = best["fp32"]
    return [{"model": name, "file": models[name].name, "seconds": best[name], "out_MP_per_s": out_mp / best[name],
             "speedup": fp32 / best[name], "peak_RSS_MB": peak[name] / 1e6} for name in models]


def banding(models: dict[str, Path], tmp: Path, args: argparse.Namespace) -> dict:
    """int8 against fp32 on a smooth sky: largest difference in levels and the LR-grid (blocking) error in dB."""
    from srgan_cli.evaluation.metrics import grid_db, psnr_y

    source = tmp / "sky.png"
    Image.fromarray(sky()).save(source)
    outs = {}
    for name, model in models.items():
        run_measured(upscale_cmd(model, source, tmp / f"sky_{name}.png", args.threads))
        outs[name] = np.asarray(Image.open(tmp / f"sky_{name}.png").convert("RGB"))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for name in models:
            Image.open(tmp / f"sky_{name}.png").crop((0, 0, 480, 320)).save(args.save / f"sky_{name}.png")
    diff = np.abs(outs["int8"].astype(int) - outs["fp32"].astype(int))
    return {"sky_max_diff_levels": int(diff.max()), "sky_mean_diff_levels": float(diff.mean()),
            "sky_int8_vs_fp32_psnr": psnr_y(outs["int8"], outs["fp32"]),
            "sky_grid_error_db": grid_db(outs["int8"], outs["fp32"])}


def quality_rows(fp32: Path, int8: Path, root: Path, args: argparse.Namespace) -> list[dict]:
    """Y-PSNR drop and NIQE change per evaluation set found under `root`."""
    from srgan_cli.training.quantize import check_against_fp32

    rows = []
    for name in SETS:
        if (root / name).is_dir():
            found = check_against_fp32(fp32, int8, root / name, refuse=None, limit=args.limit, threads=args.threads,
                                       niqe=not args.no_niqe)
            rows.append({"set": name, **{k: v for k, v in found.items() if k not in ("folder", "refuse_db")},
                         "drop_ok": found["drop_db"] <= 0.05})
    return rows


def int8_model(fp32: Path, args: argparse.Namespace, tmp: Path) -> Path:
    """--int8, or a model quantized now from --calibration photos."""
    if args.int8:
        return args.int8
    if not args.calibration:
        sys.exit("pass --int8 MODEL, or --calibration PHOTOS to quantize the fp32 model first")
    from srgan_cli.training.quantize import quantize_model

    result = quantize_model(fp32, tmp / f"{fp32.stem}.int8.onnx", args.calibration)
    print(f"quantized in {result.seconds:.0f} s: {result.recipe}", file=sys.stderr)
    return result.output


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--int8", type=Path, default=None, help="the int8 model (default: quantize --model now)")
    p.add_argument("--calibration", type=Path, default=None, help="photos to quantize on when --int8 is not given")
    p.add_argument("--also", type=Path, nargs="*", default=[], help="more int8 models to time in the same run")
    p.add_argument("--photo", type=Path, default=None, help="photo to crop/resize to 480x320 (default: synthetic)")
    p.add_argument("--threads", type=int, default=2, help="--threads of srgan upscale")
    p.add_argument("--tile", default="default", help="--tile of srgan upscale for both (default: each its own, "
                                                     "256 for fp32 and 400 for int8)")
    p.add_argument("--eval-root", type=Path, default=None, help="folder holding Set5/, Set14/, BSD100/")
    p.add_argument("--limit", type=int, default=None, help="at most this many images per evaluation set")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (faster)")
    p.add_argument("--save", type=Path, default=None, help="write the sky outputs here to look at")
    args = p.parse_args()
    fp32 = Path(model_path(args))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        models = {"fp32": fp32, "int8": int8_model(fp32, args, tmp)}
        timed = {**models, **{f"int8 {path.stem}": path for path in args.also}}
        rows = speed_rows(timed, photo(tmp / "photo.png", args.photo), tmp, args)
        extra = {"speedup": rows[1]["speedup"], "target_speedup": 2.0,
                 "peak_RSS_ratio": rows[1]["peak_RSS_MB"] / rows[0]["peak_RSS_MB"], **banding(models, tmp, args)}
        report("int8 vs fp32 (srgan upscale, 480x320 photo)", rows, args, extra)
        if args.eval_root:
            if not args.json:
                print()
            report("int8 vs fp32 quality (Y-PSNR 4 px border, NIQE)", quality_rows(fp32, models["int8"],
                                                                                   args.eval_root, args), args)


if __name__ == "__main__":
    main()
