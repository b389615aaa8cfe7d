"""SRResNet pre-training with Keras `model.fit` on any Keras backend (JAX on a lent GPU machine that has no TensorFlow).

Cuts (LR, HR) patch pairs from a photo folder in numpy, in parallel processes (Pillow bicubic, the evaluation
protocol's degradation, or with --degradation-config the realistic pipeline), continues from a generator `.weights.h5`
with L1 loss and an Adam learning rate decayed along a cosine to --lr * 0.01, stops at --steps or --minutes (counted
from the start, patch cutting and compilation included), and writes the generator weights (atomically, every
--save-every steps and at the end) for `srgan export` / `srgan train --init` on the TensorFlow side. With --minutes,
the cosine runs over the time left once training starts, so a run of unknown speed still ends at a low rate.

    KERAS_BACKEND=jax PYTHONPATH=. python scripts/pretrain_on_accelerator.py --photos bsds500/ \
        --init weights/srresnet_x4.weights.h5 --out $OUT/srresnet.weights.h5 --minutes 8 --steps 200000
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from srgan_cli.training import archs  # noqa: E402
from srgan_cli.training.patches import cut_in_processes  # noqa: E402

FLOOR = 0.01  # the cosine's end, as a fraction of --lr


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder tree of training photos")
    parser.add_argument("--out", required=True, help="generator .weights.h5 to write")
    parser.add_argument("--init", help="generator .weights.h5 to start from")
    parser.add_argument("--steps", type=int, default=100_000, help="optimiser steps (the cosine schedule's length)")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this much time since the start (0: none)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hr-size", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-4, help="start of the cosine decay to --lr * 0.01")
    parser.add_argument("--patches", type=int, default=50_000, help="patch pairs cut up front (recycled)")
    parser.add_argument("--arch", default="srresnet", help="registered generator architecture")
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--degradation-config", help="realistic LR (a degradation JSON, or 'default'); else bicubic")
    parser.add_argument("--save-every", type=int, default=5_000)
    parser.add_argument("--log-every", type=int, default=0, help="steps per logged epoch (0: --steps / 10, <= 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes cutting patches")
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


def cosine(lr, fraction):
    """The learning rate `fraction` of the way along the cosine from `lr` to `lr * FLOOR`."""
    return lr * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction))))


class SaveAndStop(keras.callbacks.Callback):
    """Writes the weights every `every` steps and at the end; stops the fit at `deadline` (a time.monotonic()).

    With a deadline, sets the learning rate at each epoch from the fraction of the time left that has passed.
    """

    def __init__(self, out, every, deadline, lr, bare):
        super().__init__()
        self.out, self.every, self.deadline, self.lr, self.bare = Path(out), every, deadline, lr, bare
        self.steps, self.begun = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.deadline is None:
            return
        self.begun = self.begun or time.monotonic()
        fraction = (time.monotonic() - self.begun) / max(1e-9, self.deadline - self.begun)
        self.model.optimizer.learning_rate = cosine(self.lr, fraction)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.every == 0:
            self.save()
        if self.deadline and time.monotonic() > self.deadline:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        print(f"learning rate {float(self.model.optimizer.learning_rate):.3g}", flush=True)

    def on_train_end(self, logs=None):
        self.save()
        print(f"saved {self.out} after {self.steps} steps", flush=True)

    def save(self):
        """The generator alone (a compiled model's .weights.h5 would carry the optimizer, three times the size)."""
        if hasattr(self.model, "jax_state_sync"):  # JAX keeps the weights off the model inside an epoch
            self.model.jax_state_sync()
        partial = self.out.with_name(self.out.stem + ".partial.weights.h5")
        self.bare.set_weights(self.model.get_weights())
        self.bare.save_weights(partial)
        partial.replace(self.out)


def main(argv=None):
    started = time.monotonic()
    args = parse_args(argv)
    lr_patches, hr_patches = cut_in_processes(args.photos, args.patches, args.hr_size, args.seed,
                                              args.degradation_config, args.workers)
    print(f"{len(lr_patches)} patch pairs in {time.monotonic() - started:.0f} s "
          f"(backend {keras.backend.backend()}, {args.workers} workers)", flush=True)
    shape = {"blocks": args.blocks, "channels": args.channels}
    generator = archs.build_generator(args.arch, shape)
    if args.init:
        generator.load_weights(args.init)
    deadline = started + args.minutes * 60 if args.minutes else None
    rate = args.lr if deadline else keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=FLOOR)
    generator.compile(optimizer=keras.optimizers.Adam(rate, beta_1=0.9), loss="mean_absolute_error")
    log_every = args.log_every or max(1, min(1000, args.steps // 10))
    saver = SaveAndStop(args.out, args.save_every, deadline, args.lr, archs.build_generator(args.arch, shape))
    generator.fit(batches(lr_patches, hr_patches, args.batch_size, args.seed), steps_per_epoch=log_every,
                  epochs=max(1, args.steps // log_every), verbose=2, callbacks=[saver])


if __name__ == "__main__":
    main()
