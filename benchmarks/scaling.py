"""Scaling: wall time and peak memory (RSS) of `srgan upscale` on inputs of 0.25, 1, 4 and 16 LR megapixels, each
in its own process. Time must grow linearly with pixels; peak memory must stay below 2 GB plus twice the output
image's bytes at the default tile size."""

import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import model_path, parser, report, run_measured, test_image
from PIL import Image


def main():
    p = parser(__doc__)
    p.add_argument("--sizes", type=float, nargs="+", default=[0.25, 1, 4, 16], help="LR megapixels")
    args = p.parse_args()
    model = model_path(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.sizes:
            side_w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
            side_h = int(round(mp * 1e6 / side_w))
            src = Path(tmp) / f"in_{mp}.png"
            tile = test_image(512, 512)
            reps = (-(-side_h // 512), -(-side_w // 512), 1)
            Image.fromarray((np.tile(tile, reps)[:side_h, :side_w] * 255).astype(np.uint8)).save(src, compress_level=1)
            cmd = [sys.executable, "-m", "srgan_cli", "upscale", str(src), "-o", str(Path(tmp) / f"out_{mp}.jpg"),
                   "--model", str(model), "--device", "cpu", "-q", "--overwrite"]
            seconds, peak = run_measured(cmd)
            out_bytes = side_w * side_h * 16 * 3
            rows.append({"LR_MP": side_w * side_h / 1e6, "size": f"{side_w}x{side_h}", "seconds": seconds,
                         "seconds_per_LR_MP": seconds / (side_w * side_h / 1e6), "peak_RSS_GB": peak / 1e9,
                         "limit_GB": (2e9 + 2 * out_bytes) / 1e9, "within_limit": peak < 2e9 + 2 * out_bytes})
    per_mp = [r["seconds_per_LR_MP"] for r in rows]
    report("scaling", rows, args, {"seconds_per_LR_MP_max_over_min": max(per_mp) / min(per_mp),
                                   "target": "seconds_per_LR_MP flat (linear time); within_limit everywhere"})


if __name__ == "__main__":
    main()
