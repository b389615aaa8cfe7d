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

from srgan_cli.errors import SrganError  # noqa: E402
from srgan_cli.training.patches import cut_in_processes, endless_batches  # noqa: E402
from srgan_cli.training.runfolder import write_atomically  # noqa: E402

FLOOR = 0.01  # the cosine's end, as a fraction of --lr
# Keras is imported inside main(): the spawned patch-cutting processes import this file and need no Keras


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder tree of training photos")
    parser.add_argument("--out", required=True, help="generator .weights.h5 to write")
    parser.add_argument("--init", help="generator .weights.h5 to start from")
    parser.add_argument("--steps", type=int, default=100_000,
                        help="optimiser steps at most (without --minutes, also the cosine schedule's length)")
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
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "save_every", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def cosine(lr, fraction):
    """The learning rate `fraction` of the way along the cosine from `lr` to `lr * FLOOR`."""
    return lr * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction))))


def save_and_stop(keras, args, deadline, bare):
    """A callback that writes the generator every --save-every steps and at the end and stops the fit after --steps
    or at `deadline` (a time.monotonic()); with a deadline it also sets the learning rate at each epoch from the
    fraction of the time left that has passed."""

    class SaveAndStop(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps, self.begun = 0, None

        def on_epoch_begin(self, epoch, logs=None):
            if deadline is None:
                return
            self.begun = self.begun or time.monotonic()
            fraction = (time.monotonic() - self.begun) / max(1e-9, deadline - self.begun)
            self.model.optimizer.learning_rate = cosine(args.lr, fraction)

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps % args.save_every == 0:
                self.save()
            if self.steps >= args.steps or (deadline and time.monotonic() > deadline):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            print(f"learning rate {float(self.model.optimizer.learning_rate):.3g}", flush=True)

        def on_train_end(self, logs=None):
            self.save()
            print(f"saved {args.out} after {self.steps} steps", flush=True)

        def save(self):
            """The generator alone (a compiled model's .weights.h5 would carry the optimizer, three times the size)."""
            if hasattr(self.model, "jax_state_sync"):  # JAX keeps the weights off the model inside an epoch
                self.model.jax_state_sync()
            bare.set_weights(self.model.get_weights())
            write_atomically(bare.save_weights, args.out)

    return SaveAndStop()


def train(args, started):
    import keras

    from srgan_cli.training import archs

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
    per_epoch = min(args.steps, args.log_every or max(1, min(1000, args.steps // 10)))
    saver = save_and_stop(keras, args, deadline, archs.build_generator(args.arch, shape))
    generator.fit(endless_batches(lr_patches, hr_patches, args.batch_size, args.seed), steps_per_epoch=per_epoch,
                  epochs=math.ceil(args.steps / per_epoch), verbose=2, callbacks=[saver])


def main(argv=None):
    started = time.monotonic()
    args = parse_args(argv)
    try:
        train(args, started)
    except SrganError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
