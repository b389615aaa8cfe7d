"""`srgan train`: option parsing only; the defaults and rules live in TrainConfig, TensorFlow is imported last."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from rich.progress import Progress, TextColumn
from rich.text import Text

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.console import RateColumn, err_console, error_line, info_line, make_progress
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.training.config import (
    ContentLoss,
    Degradation,
    DiscriminatorKind,
    GanLoss,
    Phase,
    PixelLoss,
    Strategy,
    TrainConfig,
)

D = TrainConfig()  # the defaults, shown in --help
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
SHOWN_LOSSES = ("g_loss", "d_loss")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's C++ chatter (oneDNN, CUDA probing, cuInit) and its Python INFO lines (a multi-worker
    strategy's collectives) off the terminal; run before it is imported."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        logging.getLogger("tensorflow").setLevel(logging.WARNING)


@contextmanager
def stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """File descriptor 2 to /dev/null inside the block: what TensorFlow's import writes before absl's logging is
    set up ("All log messages before absl::InitializeLog()...") ignores TF_CPP_MIN_LOG_LEVEL."""
    try:
        saved = os.dup(2) if enabled else None
    except OSError:
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class ConsoleLog(RichHandler):
    """The `srgan` logger on the shared stderr console, so its lines print above a live progress bar: one plain
    line per record, warnings marked, never wrapped (log files stay greppable)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = Text(self.format(record))
            if record.levelno >= logging.WARNING:
                text = Text.assemble(("warning: ", "yellow"), text)
            self.console.print(text, soft_wrap=True)
        except Exception:
            self.handleError(record)


def log_to_console(quiet: bool) -> None:
    logger = logging.getLogger("srgan")
    for old in [h for h in logger.handlers if isinstance(h, ConsoleLog)]:
        logger.removeHandler(old)
    handler = ConsoleLog(logging.WARNING if quiet else logging.INFO, console=err_console)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _stats(row: dict[str, Any]) -> str:
    parts = [f"{k} {row[k]:.4g}" for k in SHOWN_LOSSES if row.get(k) is not None]
    parts.append(f"lr {row['lr']:.3g}")
    if row.get("val_psnr") is not None:
        parts.append(f"val {row['val_psnr']:.2f} dB")
    return "  ".join(parts)


def train_progress(quiet: bool, total: int, start: int, every: int) -> tuple[Progress, Callable[..., None]]:
    """A bar (step, steps/s, ETA, losses, lr, validation) on a terminal; else, unless quiet, one line every
    `every` steps with the same facts."""
    progress = make_progress(quiet, RateColumn("steps/s"), TextColumn("{task.fields[stats]}", markup=False))
    task = progress.add_task("step", total=total, completed=start, stats="")
    plain = not quiet and progress.disable
    clock: dict[str, float] = {}

    def update(step: int, steps: int, row: dict[str, Any]) -> None:
        now = time.monotonic()
        clock.setdefault("time", now)  # from the end of this process's first step (which also builds the graph)
        clock.setdefault("step", step)
        stats = _stats(row)
        progress.update(task, completed=step, total=steps, stats=stats)
        if plain and (step % every == 0 or step == steps):
            rate = (step - clock["step"]) / max(now - clock["time"], 1e-6)
            eta = _duration((steps - step) / rate) if rate else "-"
            info_line(f"step {step}/{steps}  {rate:.2f} steps/s  ETA {eta}  {stats}")
    return progress, update


def _writes_run_folder(strategy: str) -> bool:
    """Whether this process writes the run folder: all but the non-chief workers of a multi-worker run."""
    from srgan_cli.training.distributed import pick_strategy, worker_from_env

    return pick_strategy(strategy) != "multiworker" or worker_from_env().chief


def run_folder(runs: Path, name: str) -> Path:
    """RUNS/NAME, where NAME must be one plain folder name."""
    if not name.strip() or name in (".", "..") or any(sep in name for sep in ("/", "\\", os.sep)):
        raise UsageError(f"--name {name!r}: a run name is one folder name (not empty, no '/', not '.' or '..')")
    return runs / name


def _yaml_loader(yaml: Any) -> Any:
    """PyYAML's safe loader, reading 1e-4 as a number as YAML 1.2 does (1.1 wants 1.0e-4 and gives a string)."""

    class Loader(yaml.SafeLoader):
        pass

    exponent = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent, list("-+0123456789"))
    return Loader


def read_config_file(path: Path) -> dict[str, Any]:
    """The options of a YAML or JSON config file (the keys of a run's config.json)."""
    try:
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise UsageError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml)") from None
            try:
                values = yaml.load(text, _yaml_loader(yaml)) or {}
            except yaml.YAMLError as err:
                raise ValueError(" ".join(str(err).split())) from None
        else:
            values = json.loads(text)
    except (OSError, ValueError) as err:
        raise UsageError(f"--config {path}: cannot read it ({str(err).splitlines()[0][:200]})") from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a mapping of option names to values")
    return values


def _given(flags: dict[str, Any], config_file: Path | None, degradation_config: Path | None) -> dict[str, Any]:
    """The options set by --config, then by flags (flags win); enums and paths as plain values."""
    given = read_config_file(config_file) if config_file else {}
    arch_params = {k: flags.pop(k) for k in ("blocks", "channels") if flags.get(k) is not None}
    if arch_params:
        from_file = given.get("arch_params", {})  # not a mapping: left for the config's check to refuse
        given["arch_params"] = {**from_file, **arch_params} if isinstance(from_file, dict) else from_file
    for key, value in flags.items():
        if value is not None:
            given[key] = str(value) if isinstance(value, Path) else value
    if degradation_config:
        from srgan_cli.evaluation.degradations import load_params, params_to_dict

        given["degradation_params"] = params_to_dict(load_params(degradation_config))
    return given


def check_writable(folder: Path) -> None:
    """Make sure the run folder can be made (or exists) and written, before TensorFlow loads; nothing is left behind.

    Args:
        folder: the run folder RUNS/NAME.

    Raises:
        SrganError: one line naming the run folder and why (read-only, a file in the way, no permission).
    """
    from srgan_cli.upscale import files

    try:
        files.check_writable(folder, folder=True)
    except SrganError as err:
        reason = str(err).split(": ", 1)[-1]
        raise SrganError(f"cannot write the run folder {folder}: {reason}") from None


def warn_about(config: TrainConfig, resume: bool) -> None:
    """Warn (on stderr, through the `srgan` logger) about options that run but likely not as meant.

    Args:
        config: the resolved config.
        resume: whether the run continues its checkpoint (which holds its generator).
    """
    log = logging.getLogger("srgan")
    if config.phase == "gan" and not config.init and not resume:
        log.warning("--phase gan without --init: adversarial training starts from a random generator "
                    "(pass --init with a pretrained run folder or weights file)")
    if config.val_degrade and not config.val:
        log.warning("--val-degrade %s without --val: no validation, so it is not used", config.val_degrade)


@app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="Folder tree of training photos.", show_default=False)] = None,
    name: Annotated[str, typer.Option(help="Run name: the run folder is RUNS/NAME.")] = "srgan",
    runs: Annotated[Path, typer.Option(help="Folder holding run folders.")] = Path("runs"),
    config_file: Annotated[Path | None, typer.Option("--config", help="YAML or JSON file of options (the keys of a run's config.json); flags override it.")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved config as JSON and exit without training.")] = False,
    phase: Annotated[Phase | None, typer.Option(help=f"pretrain: SRResNet with pixel loss; gan: adversarial. [default: {D.phase}]", show_default=False)] = None,
    arch: Annotated[str | None, typer.Option(help=f"Generator architecture (registered in srgan_cli.training.archs). [default: {D.arch}]", show_default=False)] = None,
    blocks: Annotated[int | None, typer.Option(help="Residual blocks of the generator. [default: 16]", show_default=False)] = None,
    channels: Annotated[int | None, typer.Option(help="Feature channels of the generator. [default: 64]", show_default=False)] = None,
    steps: Annotated[int | None, typer.Option(help=f"Total steps of the run; with --resume, raise it to extend. [default: {D.steps}]", show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(help=f"Global batch size. [default: {D.batch_size}]", show_default=False)] = None,
    hr_size: Annotated[int | None, typer.Option(help=f"HR crop side, a multiple of 4 (of 32 with --lattice-weight). [default: {D.hr_size}]", show_default=False)] = None,
    lr: Annotated[float | None, typer.Option(help=f"Adam learning rate, > 0. [default: {D.lr:g}]", show_default=False)] = None,
    lr_decay_every: Annotated[int | None, typer.Option(help="Multiply lr by --lr-decay-factor every N steps. [default: never for pretrain, half the steps for gan]", show_default=False)] = None,
    lr_decay_factor: Annotated[float | None, typer.Option(help=f"Learning-rate decay factor. [default: {D.lr_decay_factor:g}]", show_default=False)] = None,
    ema: Annotated[float | None, typer.Option(help="Keep an exponential moving average of the generator's weights with this decay (e.g. 0.999) and validate, save and export that. [default: 0, off]", show_default=False)] = None,
    pixel_loss: Annotated[PixelLoss | None, typer.Option(help=f"Pretraining pixel loss. [default: {D.pixel_loss}]", show_default=False)] = None,
    content_loss: Annotated[ContentLoss | None, typer.Option(help=f"GAN content loss. [default: {D.content_loss}]", show_default=False)] = None,
    adv_weight: Annotated[float | None, typer.Option(help=f"Weight of the adversarial loss. [default: {D.adv_weight:g}]", show_default=False)] = None,
    lattice_weight: Annotated[float | None, typer.Option(help="GAN: weight of a loss on the error's 4-px-periodic part (the grid adversarial training grows). [default: 0, off]", show_default=False)] = None,
    lowfreq_weight: Annotated[float | None, typer.Option(help="GAN: weight of a loss on the 4x4-block means of the error (pins brightness and colour, leaves texture free). [default: 0, off]", show_default=False)] = None,
    colour_weight: Annotated[float | None, typer.Option(help="GAN: weight of a loss on each crop's mean colour error (pulls a tint or brightness drift to zero, however small). [default: 0, off]", show_default=False)] = None,
    pixel_weight: Annotated[float | None, typer.Option(help="GAN: weight of the --pixel-loss term beside the content loss (as ESRGAN; pulls toward the photo). [default: 0, off]", show_default=False)] = None,
    overshoot_weight: Annotated[float | None, typer.Option(help="GAN: weight of a loss on output beyond the photo's 5x5 local range (halos, ringing). [default: 0, off]", show_default=False)] = None,
    d_warmup: Annotated[int | None, typer.Option(help="GAN: train only the discriminator for the first N steps. [default: 0]", show_default=False)] = None,
    discriminator: Annotated[DiscriminatorKind | None, typer.Option(help="GAN: vgg (the paper's, one logit per crop) or unet (Real-ESRGAN's spectral-norm U-Net, a logit per pixel; --hr-size a multiple of 8). [default: vgg]", show_default=False)] = None,
    gan_loss: Annotated[GanLoss | None, typer.Option(help="GAN: bce (the paper's) or ragan (ESRGAN's relativistic average loss, for D and G). [default: bce]", show_default=False)] = None,
    ldl_weight: Annotated[float | None, typer.Option(help="GAN: weight of the LDL loss (Liang et al. 2022): L1 weighted per pixel by an artifact map from the residual's local variance, masked by the --ema generator when there is one. [default: 0, off]", show_default=False)] = None,
    teacher: Annotated[Path | None, typer.Option(help="GAN: an ONNX SR model to distil: the generator also learns its output on the same LR batch (ONNX Runtime on the CPU). Needs --teacher-weight.", show_default=False)] = None,
    teacher_weight: Annotated[float | None, typer.Option(help="GAN: weight of the L1 loss toward the --teacher's output. [default: 0, off]", show_default=False)] = None,
    vgg_weights: Annotated[str | None, typer.Option(help="VGG19 notop .h5 weights file, 'imagenet' (download), or 'random': fixed random weights, for machines offline. [default: imagenet]", show_default=False)] = None,
    init: Annotated[Path | None, typer.Option(help="Start from these generator weights (.weights.h5, .keras or run folder).", show_default=False)] = None,
    degradation: Annotated[Degradation | None, typer.Option(help="How LR inputs are made: bicubic (the evaluation protocol) or realistic (Real-ESRGAN-style second-order blur, resize, noise and JPEG). [default: bicubic]", show_default=False)] = None,
    degradation_config: Annotated[Path | None, typer.Option(help="JSON file overriding the realistic pipeline's parameters (e.g. configs/degradation_real.json).", show_default=False)] = None,
    val: Annotated[Path | None, typer.Option(help="Validation folder (PSNR/SSIM on Y).", show_default=False)] = None,
    val_degrade: Annotated[str | None, typer.Option(help="Validate on damaged inputs too: ';'-separated evaluate --degrade specs, 'clean' for none (e.g. 'clean;jpeg:75').", show_default=False)] = None,
    val_every: Annotated[int | None, typer.Option(help=f"Validate every N steps. [default: {D.val_every}]", show_default=False)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help=f"Checkpoint every N steps. [default: {D.checkpoint_every}]", show_default=False)] = None,
    keep_checkpoints: Annotated[int | None, typer.Option(help=f"Keep the newest N checkpoints (checkpoint/step_NNNNNNN/); --resume continues the newest good one. [default: {D.keep_checkpoints}]", show_default=False)] = None,
    sample_every: Annotated[int | None, typer.Option(help=f"Write a sample image every N steps (0: never). [default: {D.sample_every}]", show_default=False)] = None,
    log_every: Annotated[int | None, typer.Option(help=f"Write log.csv and TensorBoard (and, without a terminal, a progress line) every N steps; validations are always logged. [default: {D.log_every}]", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the crops, the degradations and the initial weights. [default: 0]", show_default=False)] = None,
    strategy: Annotated[Strategy | None, typer.Option(help="tf.distribute strategy; auto: multiworker under a TF_CONFIG of several workers, mirrored with several GPUs, else default. [default: auto]", show_default=False)] = None,
    worker_timeout: Annotated[int, typer.Option(help="multiworker: seconds after which a worker that died or hangs stops all the others with an error (0: TensorFlow's own checks). Start-up waits up to 10 minutes for all workers.", min=0)] = 60,
    mixed_precision: Annotated[bool | None, typer.Option("--mixed-precision/--no-mixed-precision", help="Mixed precision: float16 compute on GPUs, bfloat16 on CPUs with bfloat16 instructions (avx512_bf16, amx_bf16; about 1.4x faster training on an AMD EPYC with avx512_bf16, benchmarks/train_precision.py). [default: off]", show_default=False)] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in RUNS/NAME from its checkpoint; only the schedule, validation, logging and --mixed-precision options may change.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and warnings.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Let TensorFlow's own start-up and device messages through.")] = False,
) -> None:
    """Train the SRResNet generator (pretrain) or the full SRGAN (gan) from a folder of photos.

    Stopped by Ctrl-C or SIGTERM, it saves a checkpoint and exits 130 or 143; --resume continues it.
    """
    flags = {k: v for k, v in locals().items() if k not in
             ("name", "runs", "config_file", "print_config", "degradation_config", "resume", "quiet", "verbose",
              "worker_timeout")}
    from srgan_cli.training.plan import plan_run

    run_dir = run_or_exit(run_folder, runs, name)
    given = run_or_exit(_given, flags, config_file, degradation_config)
    plan = run_or_exit(plan_run, run_dir, given, resume)
    if print_config:
        typer.echo(json.dumps(dataclasses.asdict(plan.config), indent=2))
        return
    if run_or_exit(_writes_run_folder, plan.config.strategy):
        run_or_exit(check_writable, run_dir)
    log_to_console(quiet)
    warn_about(plan.config, resume)
    quiet_tensorflow(verbose)
    try:
        with stderr_silenced(not verbose):
            from srgan_cli.training.loop import make_strategy
            from srgan_cli.training.loop import train as run_training
        strategy = run_or_exit(make_strategy, plan.config.strategy, worker_timeout,  # before any TF op: multiworker
                               quiet=lambda: stderr_silenced(not verbose))
        start = plan.run.saved_state().step if resume else 0
        progress, update = train_progress(quiet, plan.config.steps, start, plan.config.log_every)
        with progress:
            step, stopped_by = run_or_exit(run_training, plan, progress=update, strategy=strategy)
    except KeyboardInterrupt:  # before the loop catches signals: nothing to save yet
        error_line("interrupted before the first step: nothing saved")
        raise typer.Exit(SIGNAL_EXIT["SIGINT"]) from None
    from srgan_cli.training.distributed import worker_of

    whose = "" if worker_of(strategy).chief else " (the chief's; this worker kept nothing)"
    info_line(f"stopped at step {step}; run folder {run_dir}{whose}", quiet)
    if stopped_by:
        raise typer.Exit(SIGNAL_EXIT[stopped_by])
