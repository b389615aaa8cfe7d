"""`srgan train`: option parsing only; TensorFlow is imported inside the command."""

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import TextColumn

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.console import RateColumn, info_line, make_progress
from srgan_cli.training.config import TrainConfig


class Phase(str, Enum):
    pretrain = "pretrain"
    gan = "gan"


class ContentLoss(str, Enum):
    vgg54 = "vgg54"
    vgg22 = "vgg22"
    mse = "mse"


class PixelLoss(str, Enum):
    mse = "mse"
    l1 = "l1"


class Strategy(str, Enum):
    auto = "auto"
    default = "default"
    mirrored = "mirrored"
    multiworker = "multiworker"


def quiet_tensorflow():
    """Keep TensorFlow's C++ start-up chatter off the terminal (must run before it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _train_progress(quiet, total):
    progress = make_progress(quiet, RateColumn("steps/s"), TextColumn("{task.fields[stats]}"))
    task = progress.add_task("train", total=total, stats="")
    plain = not quiet and progress.disable  # no live display (not a terminal): log a line every 100 steps

    def update(step, steps, row):
        losses = " ".join(f"{k} {row[k]:.4g}" for k in ("g_loss", "d_loss") if row.get(k) is not None)
        psnr = f" val {row['val_psnr']:.2f} dB" if row.get("val_psnr") else ""
        progress.update(task, completed=step, total=steps, stats=f"{losses}{psnr}")
        if plain and (step % 100 == 0 or step == steps):
            info_line(f"step {step}/{steps} {losses}{psnr} ({row.get('seconds', 0):.0f} s)")
    return progress, update


@app.command()
def train(
    data: Annotated[Optional[Path], typer.Option(help="Folder tree of training photos.")] = None,
    name: Annotated[str, typer.Option(help="Run name: the run folder is RUNS/NAME.")] = "srgan",
    runs: Annotated[Path, typer.Option(help="Folder holding run folders.")] = Path("runs"),
    phase: Annotated[Phase, typer.Option(help="pretrain: SRResNet with pixel loss; gan: adversarial.")] = Phase.pretrain,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total steps of the run [default: 100000; with --resume: the run's own, or raise it to extend].", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch size.")] = 16,
    hr_size: Annotated[int, typer.Option(min=8, help="HR crop side (multiple of 4).")] = 96,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate [default: 1e-4].", show_default=False)] = None,
    lr_decay_every: Annotated[Optional[int], typer.Option(help="Multiply lr by --lr-decay-factor every N steps "
                                                          "(default: never for pretrain, half the steps for gan).")] = None,
    lr_decay_factor: Annotated[Optional[float], typer.Option(help="Learning-rate decay factor [default: 0.1].", show_default=False)] = None,
    ema: Annotated[Optional[float], typer.Option(min=0.0, max=0.99999, help="Keep an exponential moving average of "
                                                 "the generator's weights with this decay (e.g. 0.999) and validate, "
                                                 "save and export that [default: 0, off].", show_default=False)] = None,
    blocks: Annotated[int, typer.Option(min=1, help="Residual blocks of the generator.")] = 16,
    channels: Annotated[int, typer.Option(min=4, help="Feature channels of the generator.")] = 64,
    pixel_loss: Annotated[PixelLoss, typer.Option(help="Pretraining pixel loss.")] = PixelLoss.mse,
    content_loss: Annotated[ContentLoss, typer.Option(help="GAN content loss.")] = ContentLoss.vgg54,
    adv_weight: Annotated[float, typer.Option(help="Weight of the adversarial loss.")] = 1e-3,
    lattice_weight: Annotated[float, typer.Option(help="GAN: weight of a loss on the error's 4-px-periodic part "
                                                  "(the grid adversarial training grows); 0: off.")] = 0.0,
    lowfreq_weight: Annotated[float, typer.Option(help="GAN: weight of a loss on the 4x4-block means of the error "
                                                  "(pins brightness and colour, leaves texture free); 0: off.")] = 0.0,
    pixel_weight: Annotated[float, typer.Option(help="GAN: weight of the --pixel-loss term beside the content loss "
                                                "(as ESRGAN; pulls toward the photo, against halos and noise); 0: off.")] = 0.0,
    overshoot_weight: Annotated[float, typer.Option(help="GAN: weight of a loss on output beyond the photo's 5x5 "
                                                    "local range (halos, ringing); 0: off.")] = 0.0,
    d_warmup: Annotated[int, typer.Option(min=0, help="GAN: train only the discriminator for the first N steps, so "
                                          "the generator's first adversarial gradients come from a trained one.")] = 0,
    vgg_weights: Annotated[Optional[Path], typer.Option(help="VGG19 notop .h5 weights file (else ImageNet download), "
                                                      "or 'random': fixed random weights, for machines offline.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from these generator weights (.weights.h5, .keras or run folder).")] = None,
    val: Annotated[Optional[Path], typer.Option(help="Validation folder (PSNR/SSIM on Y).")] = None,
    val_every: Annotated[int, typer.Option(min=1)] = 1000,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 500,
    sample_every: Annotated[int, typer.Option(min=0, help="Write a sample image every N steps (0: never).")] = 1000,
    seed: Annotated[int, typer.Option()] = 0,
    strategy: Annotated[Strategy, typer.Option(help="tf.distribute strategy.")] = Strategy.auto,
    mixed_precision: Annotated[bool, typer.Option(help="mixed_float16 (GPUs).")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run in RUNS/NAME from its checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Train the SRResNet generator (pretrain) or the full SRGAN (gan) from a folder of photos."""
    if data is None and not resume:
        raise typer.BadParameter("--data is required (a folder of photos)", param_hint="--data")
    if hr_size % 4:
        raise typer.BadParameter("must be a multiple of 4", param_hint="--hr-size")
    if lattice_weight and hr_size % 32:
        raise typer.BadParameter("must be a multiple of 32 with --lattice-weight (8x8-pixel LR windows)",
                                 param_hint="--hr-size")
    # given on the command line, these also change a resumed run (extend it, or change its schedule)
    schedule = {k: v for k, v in (("steps", steps), ("lr", lr), ("lr_decay_every", lr_decay_every),
                                  ("lr_decay_factor", lr_decay_factor), ("ema", ema)) if v is not None}
    steps = steps or 100_000
    if lr_decay_every is None:
        lr_decay_every = steps // 2 if phase == Phase.gan else 0
    config = TrainConfig(
        data=str(data or ""), phase=phase.value, steps=steps, batch_size=batch_size, hr_size=hr_size, lr=lr or 1e-4,
        lr_decay_every=lr_decay_every, lr_decay_factor=lr_decay_factor or 0.1, ema=ema or 0.0, blocks=blocks,
        channels=channels, pixel_loss=pixel_loss.value, content_loss=content_loss.value, adv_weight=adv_weight,
        lattice_weight=lattice_weight, lowfreq_weight=lowfreq_weight, pixel_weight=pixel_weight,
        overshoot_weight=overshoot_weight, d_warmup=d_warmup,
        vgg_weights=str(vgg_weights) if vgg_weights else "imagenet", init=str(init or ""), val=str(val or ""),
        val_every=val_every, checkpoint_every=checkpoint_every, sample_every=sample_every, seed=seed,
        strategy=strategy.value, mixed_precision=mixed_precision)
    quiet_tensorflow()
    from srgan_cli.training.loop import train as run_training

    progress, update = _train_progress(quiet, steps)
    with progress:
        step = run_or_exit(run_training, config, runs / name, resume=resume, progress=update, overrides=schedule)
    info_line(f"stopped at step {step}; run folder {runs / name}", quiet)
