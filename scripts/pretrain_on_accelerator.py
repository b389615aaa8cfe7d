"""SRResNet pre-training with Keras `model.fit` on any Keras backend (JAX on a lent GPU machine that has no TensorFlow).

Cuts (LR, HR) patch pairs from a photo folder in numpy (Pillow bicubic, the evaluation protocol's degradation),
continues from a generator `.weights.h5` with L1 loss and a cosine-decayed Adam learning rate, stops at --steps or
--minutes, and writes the generator weights (atomically, every --save-every steps and at the end) for
`srgan export` / `srgan train --init` on the TensorFlow side.

    KERAS_BACKEND=jax PYTHONPATH=. python scripts/pretrain_on_accelerator.py --photos bsds500/ \
        --init weights/srresnet_x4.weights.h5 --out $OUT/srresnet.weights.h5 --minutes 8 --steps 200000
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from srgan_cli.evaluation.degradations import load_params  # noqa: E402
from srgan_cli.training import archs  # noqa: E402
from srgan_cli.training.patches import load_photos, patch_pairs  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder tree of training photos")
    parser.add_argument("--out", required=True, help="generator .weights.h5 to write")
    parser.add_argument("--init", help="generator .weights.h5 to start from")
    parser.add_argument("--steps", type=int, default=100_000, help="optimiser steps (the cosine schedule's length)")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this much training time (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hr-size", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-4, help="start of the cosine decay to --lr * 0.01")
    parser.add_argument("--patches", type=int, default=50_000, help="patch pairs cut up front (recycled)")
    parser.add_argument("--arch", default="srresnet", help="registered generator architecture")
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--degradation-config", help="realistic LR (a degradation JSON, or 'default'); else bicubic")
    parser.add_argument("--save-every", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def batches(lr_patches, hr_patches, batch_size, seed):
    """Endless shuffled batches: LR in [0,1], HR in [-1,1] (the generator's tanh range)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(lr_patches))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            pick = order[start:start + batch_size]
            yield lr_patches[pick].astype("float32") / 255.0, hr_patches[pick].astype("float32") / 127.5 - 1.0


class SaveAndStop(keras.callbacks.Callback):
    """Writes the weights every `every` steps and at the end; stops the fit after `minutes`."""

    def __init__(self, out, every, minutes):
        super().__init__()
        self.out, self.every, self.deadline = Path(out), every, time.monotonic() + minutes * 60 if minutes else None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.every == 0:
            self.save()
        if self.deadline and time.monotonic() > self.deadline:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.save()
        print(f"saved {self.out} after {self.steps} steps", flush=True)

    def save(self):
        partial = self.out.with_name(self.out.stem + ".partial.weights.h5")
        self.model.save_weights(partial)
        partial.replace(self.out)


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    images = load_photos(args.photos, args.hr_size).images
    degradation = None
    if args.degradation_config:
        degradation = load_params(None if args.degradation_config == "default" else args.degradation_config)
    lr_patches, hr_patches = patch_pairs(images, args.patches, args.hr_size, args.seed, degradation=degradation)
    print(f"{len(images)} photos, {len(lr_patches)} patch pairs in {time.monotonic() - started:.0f} s "
          f"(backend {keras.backend.backend()})", flush=True)
    generator = archs.build_generator(args.arch, {"blocks": args.blocks, "channels": args.channels})
    if args.init:
        generator.load_weights(args.init)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=0.01)
    generator.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.9), loss="mean_absolute_error")
    log_every = max(1, min(1000, args.steps // 10))
    generator.fit(batches(lr_patches, hr_patches, args.batch_size, args.seed), steps_per_epoch=log_every,
                  epochs=max(1, args.steps // log_every), verbose=2,
                  callbacks=[SaveAndStop(args.out, args.save_every, args.minutes)])


if __name__ == "__main__":
    main()
