"""SRGAN adversarial training with a custom JAX step (Keras on the JAX backend: a lent GPU machine without TensorFlow).

Cuts (LR, HR) patch pairs from a photo folder in numpy, in parallel processes (Pillow bicubic, the evaluation
protocol's degradation, or with --degradation-config the realistic pipeline); starts the registry's generator from a
`.weights.h5`; trains it against the paper's or the U-Net discriminator with pixel L1 + perceptual (VGG, fixed random
weights by default) + adversarial (RaGAN by default) + optional LDL, lattice, low-frequency and overshoot losses, and
L1 toward a --teacher (an ncnn model such as Real-ESRGAN x4plus, run on the device as a Keras model); one
discriminator update then one generator update per step (`srgan_cli.training.gan_step`: stateless calls,
jax.value_and_grad, jax.jit); keeps a moving average of the generator (--ema); stops at --steps or --minutes (counted
from the start, patch cutting and compilation included); writes atomically, every --save-every steps and at the end
(--seed fixes the crops, their order and the random VGG; a fresh discriminator's initial weights are not seeded):

    OUT.weights.h5                the generator (its moving average with --ema): srgan export / srgan train --init
    OUT.raw.weights.h5            with --ema, the generator's own weights
    OUT.discriminator.weights.h5  the discriminator (--init-discriminator continues from it; --no-save-discriminator)
    OUT.config.json               the run's options as a TrainConfig (srgan export reads the network's shape there)
    OUT.step<N>.weights.h5        with --keep-every, the generator as it was at step N

    KERAS_BACKEND=jax PYTHONPATH=. python scripts/gan_on_accelerator.py --photos bsds500/ \
        --init weights/srresnet_x4.weights.h5 --out $OUT/srgan.weights.h5 --minutes 9 --steps 100000
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from srgan_cli.training.patches import cut_in_processes, degradation_params, endless_batches  # noqa: E402
from srgan_cli.training.runfolder import write_atomically  # noqa: E402


def at_least(low: int) -> Any:
    """An argparse type: an integer >= `low`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {low}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--photos", required=True, help="folder tree of training photos")
    p.add_argument("--out", required=True, type=Path, help="generator .weights.h5 to write (and files beside it)")
    p.add_argument("--init", help="generator .weights.h5 to start from (e.g. weights/srresnet_x4.weights.h5)")
    p.add_argument("--init-discriminator", help="discriminator .weights.h5 of an earlier run of this script")
    p.add_argument("--steps", type=int, default=100_000, help="GAN steps (discriminator warm-up included)")
    p.add_argument("--minutes", type=float, default=0, help="stop after this much time since the start (0: none)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hr-size", type=int, default=96, help="HR crop side (a multiple of 8; 32 with --lattice-weight)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of both networks")
    p.add_argument("--d-warmup", type=int, default=0, help="train only the discriminator for the first N steps")
    p.add_argument("--discriminator", choices=("vgg", "unet"), default="unet")
    p.add_argument("--gan-loss", choices=("bce", "ragan"), default="ragan")
    p.add_argument("--content-loss", choices=("vgg54", "vgg22", "none"), default="vgg54")
    p.add_argument("--vgg-weights", default="random", help="'random' (fixed seeded), 'imagenet' or a notop .h5 file")
    for name, default, what in (("content", 1.0, "VGG feature MSE"), ("pixel", 1e-2, "pixel L1"),
                                ("adv", 5e-3, "adversarial loss"), ("ldl", 0.0, "LDL artifact-weighted L1"),
                                ("teacher", 0.0, "L1 toward the --teacher's SR"),
                                ("lattice", 0.0, "lattice (4-px grid) loss"), ("lowfreq", 0.0, "4x4-block-mean loss"),
                                ("colour", 0.0, "crop-mean colour loss"),
                                ("overshoot", 0.0, "overshoot (halo) loss")):
        p.add_argument(f"--{name}-weight", type=float, default=default, help=f"weight of the {what}")
    p.add_argument("--teacher", help="an ncnn .param (the .bin beside it) of an SR model to distil, run on the "
                   "device as a Keras model (e.g. Real-ESRGAN x4plus); needs --teacher-weight")
    p.add_argument("--ema", type=float, default=0.999, help="moving-average decay of the generator (0: none)")
    p.add_argument("--patches", type=int, default=50_000, help="patch pairs cut up front (recycled)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes cutting patches")
    p.add_argument("--arch", default="srresnet", help="registered generator architecture")
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--degradation-config", help="realistic LR (a degradation JSON, or 'default'); else bicubic")
    p.add_argument("--save-every", type=at_least(1), default=1_000)
    p.add_argument("--keep-every", type=at_least(0), default=0,
                   help="also keep the generator of every N-th step as OUT.step<N>.weights.h5 (0: none)")
    p.add_argument("--save-discriminator", action=argparse.BooleanOptionalAction, default=True,
                   help="also write OUT.discriminator.weights.h5 (the U-Net's is 17.5 MB, the paper's 95 MB)")
    p.add_argument("--log-every", type=at_least(1), default=100)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def sibling(out: Path, tag: str) -> Path:
    """OUT.weights.h5 -> OUT.<tag> beside it."""
    return out.with_name(out.name.removesuffix(".weights.h5") + f".{tag}")


def save_weights(model: Any, path: Path) -> None:
    write_atomically(model.save_weights, path)


def write_config(args: argparse.Namespace) -> None:
    """OUT.config.json: the options as a TrainConfig (checked by its rules), so `srgan export` and `srgan train --init`
    know the network."""
    from srgan_cli.evaluation.degradations import params_to_dict
    from srgan_cli.training.config import TrainConfig

    params = degradation_params(args.degradation_config)
    degradation = params_to_dict(params) if params is not None else {}
    config = TrainConfig(
        data=str(args.photos), phase="gan", arch=args.arch, arch_params={"blocks": args.blocks,
                                                                         "channels": args.channels},
        steps=args.steps, batch_size=args.batch_size, hr_size=args.hr_size, lr=args.lr, ema=args.ema,
        pixel_loss="l1", content_loss="mse" if args.content_loss == "none" else args.content_loss,
        adv_weight=args.adv_weight, pixel_weight=args.pixel_weight, ldl_weight=args.ldl_weight,
        teacher=args.teacher or "", teacher_weight=args.teacher_weight,
        lattice_weight=args.lattice_weight, lowfreq_weight=args.lowfreq_weight, colour_weight=args.colour_weight,
        overshoot_weight=args.overshoot_weight, d_warmup=args.d_warmup, discriminator=args.discriminator,
        gan_loss=args.gan_loss, vgg_weights=args.vgg_weights,
        init=args.init or "", degradation="realistic" if degradation else "bicubic", degradation_params=degradation,
        seed=args.seed)
    config.check()
    config.save(sibling(args.out, "config.json"))


def build(args: argparse.Namespace) -> Any:
    """The networks and the step object, from the arguments."""
    from srgan_cli.training import archs, losses
    from srgan_cli.training.discriminator import make_discriminator
    from srgan_cli.training.gan_step import GanWeights, StatelessGan

    generator = archs.build_generator(args.arch, {"blocks": args.blocks, "channels": args.channels})
    if args.init:
        generator.load_weights(args.init)
    discriminator = make_discriminator(args.discriminator, args.hr_size)
    if args.init_discriminator:
        discriminator.load_weights(args.init_discriminator)
    extractor = None if args.content_loss == "none" else losses.build_feature_extractor(args.content_loss,
                                                                                         args.vgg_weights)
    weights = GanWeights(
        content=args.content_weight if extractor is not None else 0.0, pixel=args.pixel_weight, adv=args.adv_weight,
        ldl=args.ldl_weight, teacher=args.teacher_weight, lattice=args.lattice_weight, lowfreq=args.lowfreq_weight,
        colour=args.colour_weight, overshoot=args.overshoot_weight, gan_loss=args.gan_loss,
        content_scale=losses.feature_scale(args.content_loss, args.vgg_weights), ema=args.ema)
    return StatelessGan(generator, discriminator, extractor, weights, args.lr)


def teacher(args: argparse.Namespace) -> Any:
    """The compiled --teacher (LR -> its SR in [-1,1]), or None without one."""
    if not args.teacher:
        return None
    from srgan_cli.training.gan_step import teaching
    from srgan_cli.training.ncnn import keras_model

    return teaching(keras_model(Path(args.teacher)))


def save(gan: Any, state: Any, args: argparse.Namespace) -> None:
    """The generator (its average with --ema), the raw one with --ema, and the discriminator, atomically."""
    if args.ema:
        gan.publish(state, average=False)
        save_weights(gan.g, sibling(args.out, "raw.weights.h5"))
    gan.publish(state, average=True)
    save_weights(gan.g, args.out)
    if args.save_discriminator:
        save_weights(gan.d, sibling(args.out, "discriminator.weights.h5"))


def train(args: argparse.Namespace, started: float) -> int:
    """The loop; returns the number of steps done. Exits (keeping the last save) on a non-finite loss."""
    import keras

    from srgan_cli.training.gan_step import compiled

    lr_patches, hr_patches = cut_in_processes(args.photos, args.patches, args.hr_size, args.seed,
                                              args.degradation_config, args.workers)
    print(f"{len(lr_patches)} patch pairs in {time.monotonic() - started:.0f} s (backend {keras.backend.backend()}, "
          f"{args.workers} workers)", flush=True)
    gan = build(args)  # not keras.utils.set_random_seed, which imports TensorFlow where it is installed
    state, d_step, gan_step = gan.initial_state(), compiled(gan.d_step), compiled(gan.step)
    teach = teacher(args)
    deadline = started + args.minutes * 60 if args.minutes else math.inf
    data, done, clock = endless_batches(lr_patches, hr_patches, args.batch_size, args.seed), 0, time.monotonic()
    while done < args.steps and time.monotonic() < deadline:
        lr, hr = next(data)
        if done >= args.d_warmup:
            state, logs = gan_step(state, lr, hr, teach(lr) if teach else None)
        else:
            state, logs = d_step(state, lr, hr)
        done += 1
        if done % args.log_every == 0 or done == args.steps:
            values = {k: float(v) for k, v in logs.items()}
            rate = args.log_every / max(time.monotonic() - clock, 1e-9)
            clock = time.monotonic()
            print(f"step {done}  {rate:.2f} steps/s  " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()),
                  flush=True)
            if not all(math.isfinite(v) for v in values.values()):
                raise SystemExit(f"non-finite loss at step {done}: stopped; the last save stands")
        if done % args.save_every == 0:
            save(gan, state, args)
        if args.keep_every and done % args.keep_every == 0:
            gan.publish(state, average=True)
            save_weights(gan.g, sibling(args.out, f"step{done}.weights.h5"))
    save(gan, state, args)
    return done


def main(argv: list[str] | None = None) -> None:
    started = time.monotonic()
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from srgan_cli.errors import SrganError

    try:
        write_config(args)  # checks the options first, with TrainConfig's rules
        done = train(args, started)
    except SrganError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"saved {args.out} after {done} steps ({(time.monotonic() - started) / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
