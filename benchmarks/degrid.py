"""The cost of a post-processing step: the same photo upscaled with and without `--degrid` (or, with `--step
consistency`, `--consistency`), alternating, in one run, at fp32 and at int8 (when the model has its int8 copy).
Prints each side's best time and the share the step adds."""

from pathlib import Path

import numpy as np
from _common import ROOT, alternating_best, parser, report
from PIL import Image

from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.models import resolve_model
from srgan_cli.upscale.precision import variant_path


def main():
    p = parser(__doc__)
    p.add_argument("--photo", type=Path, default=ROOT / "examples" / "coffee.png")
    p.add_argument("--step", choices=["degrid", "consistency"], default="degrid")
    args = p.parse_args()
    step = args.step
    path = resolve_model(args.model or "srgan_x4_real")
    image = np.asarray(Image.open(args.photo).convert("RGB"), dtype=np.float32) / 255.0
    precisions = ["fp32", "int8"] if variant_path(path, "int8").is_file() else ["fp32"]
    rows = []
    for precision in precisions:
        plain, stepped = (Upscaler(path, device="cpu", precision=precision,  # the other step off on both sides
                                   **{"degrid": False, "consistency": False, step: on}) for on in (False, True))
        best = alternating_best({"off": lambda u=plain: u.upscale_array(image),
                                 "on": lambda u=stepped: u.upscale_array(image)}, args.repeat)
        off_s, on_s = best["off"], best["on"]
        rows.append({"precision": precision, "tile": plain.tile, f"no_{step}_s": off_s, f"{step}_s": on_s,
                     f"{step}_adds": on_s / off_s - 1, f"{step}_s_per_output_mp": (on_s - off_s) / (
                         image.shape[0] * image.shape[1] * plain.scale ** 2 / 1e6)})
    report(step, rows, args, {"photo": f"{args.photo.name} {image.shape[1]}x{image.shape[0]} LR",
                                  "model": path.name})


if __name__ == "__main__":
    main()
