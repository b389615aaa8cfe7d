"""Start-up: `srgan --help` and upscaling a 32x32 image, against a bare `python -c pass`, in one run: what the CLI
adds (target: well under a second)."""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import best_time, model_path, parser, report
from PIL import Image


def main():
    p = parser(__doc__)
    args = p.parse_args()
    model = model_path(args)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tiny.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(src)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "srgan --help": [sys.executable, "-m", "srgan_cli", "--help"],
            "srgan upscale --help": [sys.executable, "-m", "srgan_cli", "upscale", "--help"],
            "srgan upscale 32x32": [sys.executable, "-m", "srgan_cli", "upscale", str(src), "-o",
                                    str(Path(tmp) / "o.png"), "--model", str(model), "-q", "--overwrite"],
        }
        times = {k: best_time(lambda c=c: subprocess.run(c, check=True, capture_output=True), args.repeat)
                 for k, c in commands.items()}
    base = times["python -c pass"]
    rows = [{"command": k, "seconds": v, "added_over_bare_python": v - base} for k, v in times.items()]
    report("startup", rows, args, {"target": "added_over_bare_python well under 1 s"})


if __name__ == "__main__":
    main()
