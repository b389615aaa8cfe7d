"""Folder throughput: `srgan upscale` on a folder of photos against the sum of pure inference time for the same
photos, in one run. Decoding, encoding and writing should hide behind inference (target: overhead <= 10%)."""

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, best_time, model_path, parser, report
from PIL import Image

from srgan_cli.upscale import batch, imaging
from srgan_cli.upscale.inference import Upscaler


def make_photos(folder, count, seed=0):
    """`count` JPEG photos of varied sizes cut from the example photos."""
    rng = np.random.default_rng(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted((ROOT / "examples").glob("*.png"))]
    for i in range(count):
        src = sources[i % len(sources)]
        w, h = int(rng.integers(120, 240)), int(rng.integers(90, 180))
        x, y = int(rng.integers(0, src.width - w)), int(rng.integers(0, src.height - h))
        src.crop((x, y, x + w, y + h)).save(folder / f"photo_{i:02d}.jpg", quality=92)


def main():
    p = parser(__doc__)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternate pure inference and the folder command this many times; each side's best counts")
    args = p.parse_args()
    upscaler = Upscaler(model_path(args), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        make_photos(src, args.count)
        photos = [imaging.read_photo(f) for f in sorted(src.iterdir())]
        upscaler.upscale_photo(photos[0])  # warm-up
        inference, folder, done = [], [], 0
        for _ in range(args.rounds):  # side by side: a slow minute on the shared machine hits both
            inference.append(sum(best_time(lambda ph=ph: upscaler.upscale_photo(ph), 1, warmup=0) for ph in photos))
            seconds, done = time_folder(src, out, upscaler)
            folder.append(seconds)
    lr_mp = sum(ph.size[0] * ph.size[1] for ph in photos) / 1e6
    rows = [{"what": "pure inference (sum over photos)", "seconds": min(inference), "rounds": _spread(inference)},
            {"what": "srgan upscale folder (decode+infer+encode+write)", "seconds": min(folder),
             "rounds": _spread(folder)}]
    overheads = [f / i - 1 for i, f in zip(inference, folder, strict=True)]
    report("folder", rows, args, {"photos": f"{done}/{len(photos)} done, {lr_mp:.2f} LR MP, JPEG in and out",
                                  "overhead": min(folder) / min(inference) - 1,
                                  "overhead_per_round": " ".join(f"{o:+.3f}" for o in overheads),
                                  "target": "overhead <= 0.10"})


def time_folder(src, out, upscaler):
    """Seconds for `srgan upscale`'s batch path on the folder (outputs replaced), and how many files it did."""
    options = batch.Options(out=out, overwrite=True)
    jobs, _ = batch.collect_jobs([src], options)
    outcomes = []
    start = time.perf_counter()
    batch.run_batch(jobs, upscaler.upscale_photo, options, outcomes.append)
    return time.perf_counter() - start, sum(o.status == "done" for o in outcomes)


def _spread(seconds):
    return " ".join(f"{s:.2f}" for s in seconds)

if __name__ == "__main__":
    main()
