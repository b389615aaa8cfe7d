"""The training loop: builds the run from its plan, steps, validates, samples, checkpoints, and stops cleanly."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import signal
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import keras

from srgan_cli.errors import SrganError
from srgan_cli.evaluation import degradations
from srgan_cli.training import archs, data, distributed, patches, precision, workers
from srgan_cli.training.averaging import WeightAverage
from srgan_cli.training.checkpoint import (
    load_average,
    load_checkpoint,
    output_finite,
    resume_hint,
    save_checkpoint,
)
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.distributed import Worker
from srgan_cli.training.distributed import make_strategy as make_strategy  # the name tests and scripts import
from srgan_cli.training.plan import RunPlan
from srgan_cli.training.runfolder import EXTRA_TERMS, LOG_FIELDS, RunFolder, RunState
from srgan_cli.training.trainer import Trainer
from srgan_cli.training.validation import load_validation, save_sample, validate
from srgan_cli.training.watch import DiscriminatorWatch

log = logging.getLogger("srgan")
Progress = Callable[[int, int, dict[str, Any]], None]  # (step, total steps, row) after each step
EARLY_VALIDATION = 5  # validate this many steps after each start: a first number now, not --val-every steps later
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@contextmanager
def stop_requests() -> Iterator[dict[str, str | None]]:
    """Turn SIGINT/SIGTERM into a flag the loop checks, so it can checkpoint before leaving."""
    flag: dict[str, str | None] = {"stop": None}

    def handler(signum: int, _frame: Any) -> None:
        flag["stop"] = signal.Signals(signum).name
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def init_generator(trainer: Trainer, init: str | Path) -> None:
    """Load starting generator weights from a .weights.h5, a .keras file or a run folder (its latest generator).

    Raises:
        SrganError: one line naming the file and what is wrong with it (not weights, not this architecture).
    """
    path = Path(init)
    if path.is_dir():
        path = RunFolder(path).generator_file("latest")
        if not path.is_file():
            raise SrganError(f"--init {init}: a folder without {path.name} (not a run folder?)")
    if not path.is_file():
        raise SrganError(f"--init {init}: not found")
    with path.open("rb") as f:
        head = f.read(len(HDF5_SIGNATURE))
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise SrganError(f"--init {path}: not a .keras model file (not a zip archive)")
    if path.suffix != ".keras" and head != HDF5_SIGNATURE:
        raise SrganError(f"--init {path}: not a .weights.h5 weights file (not HDF5)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per layer it cannot match before it raises
            if path.suffix == ".keras":
                model = keras.saving.load_model(path, safe_mode=True, compile=False)
                trainer.generator.set_weights(model.get_weights())
            else:
                trainer.generator.load_weights(path)
    except Exception as err:  # Keras raises ValueError, KeyError, TypeError, OSError... for a file that does not fit
        text = str(err)
        shapes = re.search(r"variable\.shape=\S+, Received: value\.shape=\([^)]*\)", text)
        reason = shapes.group(0) if shapes else text.splitlines()[0][:200] if text else type(err).__name__
        config = trainer.config
        about = archs.get(config.arch).describe(archs.params_of(config.arch, config.arch_params))
        raise SrganError(f"--init {path}: does not fit the generator of this run ({about}): {reason}") from None


def train(plan: RunPlan, progress: Progress | None = None, strategy: Any = None) -> tuple[int, str | None]:
    """Train per `plan` (from `plan.plan_run`); returns the final step and the signal that stopped it, if any.

    Args:
        plan: the run folder, its resolved config and whether it resumes.
        progress: called with (step, total, row) after each step for display.
        strategy: the tf.distribute strategy, made before TensorFlow started (`distributed.make_strategy`, as
            `srgan train` does: multiworker needs that); None makes it here from the config.
    """
    run, config = plan.run, plan.config
    strategy = strategy or make_strategy(config.strategy)
    worker = distributed.worker_of(strategy)
    try:
        with workers.stop_on_lost_peer(worker, run), run.lock() if worker.chief else nullcontext():
            return _train(plan, strategy, worker, progress)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # as clear_session leaves it: what comes next builds float32


def _train(plan: RunPlan, strategy: Any, worker: Worker, progress: Progress | None) -> tuple[int, str | None]:
    run, config = plan.run, plan.config
    _check_split(config.batch_size, strategy, worker)
    keras.backend.clear_session()  # fresh layer names and seed generator: the same run in or out of process
    keras.mixed_precision.set_global_policy(run_policy(config.mixed_precision))  # after: clear_session resets it
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, strategy)
    state = RunState()
    if plan.resume:
        state = load_checkpoint(run.checkpoint, trainer, set_aside=worker.chief)
        log.info("resuming at step %d", state.step)
        if worker.chief:
            run.truncate_log(state.step)
    elif config.init:
        init_generator(trainer, config.init)
    photos = patches.load_photos(config.data, config.hr_size)
    log.info("training on %d photos (%d too small, %d unreadable skipped)",
             len(photos.images), photos.too_small, photos.unreadable)
    workers.check_agreement(strategy, worker, state.step, _agreed(config, photos))
    val_pairs = load_validation(config.val, trainer.scale, config.val_degrade) if config.val else None
    if config.ema:
        trainer.average = WeightAverage(trainer.generator, config.ema)
        if plan.resume:
            load_average(run.checkpoint, trainer.average)
    with workers.writable(run, worker) as out:
        out.create()
        config.save(out.config)
        terms = [f"{t}_term" for t in EXTRA_TERMS if config.phase == "gan" and getattr(config, f"{t}_weight")]
        out.log_fields = LOG_FIELDS + terms
        try:
            step, stopped = _loop(config, out, trainer, photos, val_pairs, state, progress, worker.count)
        finally:
            out.flush()
    if worker.count > 1:  # every worker's weights are the same: the digests show it
        log.info("%s: at step %d, generator weights %s", worker, step, workers.digest(trainer.generator))
    return step, stopped


def run_policy(mixed: bool) -> str:
    """The dtype policy of --mixed-precision here (precision.dtype_policy with this machine's GPUs and CPU)."""
    import tensorflow as tf

    return precision.dtype_policy(mixed, len(tf.config.list_physical_devices("GPU")), precision.cpu_has_bf16())


def _check_split(batch_size: int, strategy: Any, worker: Worker) -> None:
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        where = f" ({worker.count} workers)" if worker.count > 1 else ""
        raise SrganError(f"--batch-size {batch_size} does not split evenly over {replicas} replicas{where}: "
                         f"use a multiple of {replicas}")


def _agreed(config: TrainConfig, photos: patches.PhotoSet) -> dict[str, Any]:
    """What every worker must share: the options (paths may differ between machines) and the photos' sizes."""
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("data", "val", "init")}
    return {**options, "photos": [list(image.shape) for image in photos.images]}


def _loop(config: TrainConfig, run: RunFolder, trainer: Trainer, photos: patches.PhotoSet, val_pairs: Any,
          state: RunState, progress: Progress | None, workers_count: int) -> tuple[int, str | None]:
    strategy = trainer.strategy
    batches = data.distributed_batches(strategy, photos.images, config.hr_size, config.batch_size, config.seed,
                                       state.step, trainer.scale, _degradation(config))
    sample = next(iter(data.make_dataset(photos.images, config.hr_size, 1, config.seed + 1,
                                         degradation=_degradation(config))))
    sync = workers.StepSync(trainer, strategy, workers_count)
    early = state.step + EARLY_VALIDATION
    shown_psnr = None  # validated by this process: a resumed run shows no number from before it stopped
    watch = DiscriminatorWatch()
    started = time.monotonic()
    with stop_requests() as stop:
        while state.step < config.steps and not sync.stopping(stop["stop"]):
            step = state.step + 1
            lr_now = config.lr_at(state.step)
            trainer.set_learning_rate(lr_now)
            lr_batch, hr_batch = next(batches)
            row = {"step": step, "lr": lr_now, **trainer.train_step(lr_batch, hr_batch, step > config.d_warmup)}
            sync.after_step(stop["stop"])  # BatchNorm statistics and stop requests, alike on every worker
            bad = [f"{k} {v}" for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                raise SrganError(f"{bad[0]} at step {step}: stopped; {resume_hint(run.checkpoint)}")
            if "d_loss" in row and step > config.d_warmup and (warning := watch.update(step, row["d_loss"])):
                log.warning(warning)
            state.step = step
            validated = _periodic(config, run, trainer, val_pairs, state, row, sample, step == early)
            shown_psnr = row["val_psnr"] if validated else shown_psnr
            row["seconds"] = round(time.monotonic() - started, 2)
            if step % config.log_every == 0 or step == config.steps or validated:
                run.log_row(row)
            if progress:
                progress(step, config.steps, {**row, "val_psnr": shown_psnr})
        _finish(run, trainer, state, config.keep_checkpoints)  # a second signal while saving changes nothing
    if sync.agreed and not stop["stop"]:
        stop["stop"] = "SIGTERM"
        log.info("another worker was asked to stop: every worker stops after step %d", state.step)
    if stop["stop"]:
        log.info("%s received: checkpoint saved at step %d, continue with --resume", stop["stop"], state.step)
    return state.step, stop["stop"]


def _degradation(config: TrainConfig) -> degradations.DegradationParams | None:
    """The run's realistic degradation parameters, or None for the protocol's bicubic LR."""
    if config.degradation == "bicubic":
        return None
    return degradations.params_from_dict(config.degradation_params, "config.json degradation_params")


@contextmanager
def published(trainer: Trainer) -> Iterator[keras.Model]:
    """The generator as validated, sampled and saved: holding its weight average when the run keeps one."""
    if trainer.average is None:
        yield trainer.generator
    else:
        with trainer.average.applied(trainer.generator) as generator:
            yield generator


def _periodic(config: TrainConfig, run: RunFolder, trainer: Trainer, val_pairs: Any, state: RunState,
              row: dict[str, Any], sample: Any, early: bool) -> bool:
    """Validate, sample and checkpoint when their step comes; returns whether it validated."""
    step = state.step
    validate_now = bool(val_pairs) and (step % config.val_every == 0 or early)
    sample_now = bool(config.sample_every) and step % config.sample_every == 0
    if validate_now or sample_now:  # swapping the average in and out costs two weight copies: only when used
        with published(trainer) as generator:
            if validate_now:
                _validate_and_keep_best(run, generator, val_pairs, state, row)
            if sample_now:
                sample_lr, sample_hr = sample
                run.log_image("sample", step, save_sample(generator, sample_lr, sample_hr, run.sample_path(step)))
    if step % config.checkpoint_every == 0:
        _finish(run, trainer, state, config.keep_checkpoints)
    return validate_now


def _validate_and_keep_best(run: RunFolder, generator: keras.Model, val_pairs: Any, state: RunState,
                            row: dict[str, Any]) -> None:
    row["val_psnr"], row["val_ssim"] = validate(generator, val_pairs)
    if not math.isfinite(row["val_psnr"]):
        raise SrganError(f"val_psnr nan at step {state.step} (the generator's output is not finite): stopped; "
                         f"{resume_hint(run.checkpoint)}")
    state.last_psnr = row["val_psnr"]
    if state.best_psnr is None or row["val_psnr"] > state.best_psnr:
        state.best_psnr = row["val_psnr"]
        state.best_step = state.step
        run.save_generator(generator, "best_generator")


def _finish(run: RunFolder, trainer: Trainer, state: RunState, keep: int) -> None:
    save_checkpoint(run.checkpoint, trainer, state, keep)  # the generator's own weights: what resume continues
    with published(trainer) as generator:
        if trainer.average is not None and not output_finite(generator):
            raise SrganError(f"the weight average's output is not finite after step {state.step}: stopped; "
                             f"{resume_hint(run.checkpoint)}")
        run.save_generator(generator, "generator")
