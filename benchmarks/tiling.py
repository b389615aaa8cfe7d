"""Tiling overhead: the default tiled settings against the whole image in one run, with the largest pixel
difference (target: at most 25% slower, at most 1/255 apart). `--sweep` also tries other tile/pad pairs;
`--precision int8` measures the model's int8 copy at int8's own defaults (400-px tiles, pad 40)."""

from pathlib import Path

import numpy as np
from _common import ROOT, best_time, model_path, parser, report
from PIL import Image

from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.tiling import default_pad, default_tile

SWEEPS = {"fp32": [(t, p) for t in (128, 192, 256) for p in (8, 16, 24, 32)],
          "int8": [(448, 16), (400, 24), (400, 32), (128, 16), (128, 40)]}


def main():
    p = parser(__doc__)
    p.add_argument("--photo", type=Path, default=ROOT / "examples" / "coffee.png")
    p.add_argument("--sweep", action="store_true", help="also measure other tile/pad pairs (SWEEPS)")
    p.add_argument("--precision", choices=sorted(SWEEPS), default="fp32", help="the model itself or its int8 copy")
    args = p.parse_args()
    path = model_path(args)
    image = np.asarray(Image.open(args.photo).convert("RGB"), dtype=np.float32) / 255.0
    whole_upscaler = Upscaler(path, device="cpu", tile=0, precision=args.precision)
    whole = whole_upscaler.upscale_array(image)
    whole_s = best_time(lambda: whole_upscaler.upscale_array(image), args.repeat, warmup=0)
    pairs = [(default_tile(args.precision, "cpu"), default_pad(args.precision))]
    if args.sweep:
        pairs += [pair for pair in SWEEPS[args.precision] if pair != pairs[0]]
    rows = []
    for tile, pad in pairs:
        tiled_upscaler = Upscaler(path, device="cpu", tile=tile, tile_pad=pad, precision=args.precision)
        tiled = tiled_upscaler.upscale_array(image)
        seconds = best_time(lambda: tiled_upscaler.upscale_array(image), args.repeat, warmup=0)  # noqa: B023  (called at once)
        diff = float(np.abs(tiled - whole).max())
        rows.append({"tile": tile, "pad": pad, "seconds": seconds, "slower_than_whole": seconds / whole_s - 1,
                     "max_abs_diff": diff, "max_diff_in_255ths": diff * 255})
    report("tiling", rows, args, {"photo": f"{args.photo.name} {image.shape[1]}x{image.shape[0]} LR",
                                  "precision": whole_upscaler.precision.precision,
                                  "whole_image_seconds": whole_s, "target": "slower <= 0.25, max_diff_in_255ths <= 1"})


if __name__ == "__main__":
    main()
