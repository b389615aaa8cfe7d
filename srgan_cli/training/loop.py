"""The training loop: builds the run from its plan, steps, validates, samples, checkpoints, and stops cleanly."""

import logging
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

from srgan_cli.errors import SrganError
from srgan_cli.evaluation import degradations
from srgan_cli.training import data, patches
from srgan_cli.training.averaging import WeightAverage
from srgan_cli.training.checkpoint import has_checkpoint, load_average, load_checkpoint, save_checkpoint
from srgan_cli.training.plan import RunPlan
from srgan_cli.training.runfolder import RunFolder, RunState
from srgan_cli.training.trainer import Trainer
from srgan_cli.training.validation import load_validation, save_sample, validate

log = logging.getLogger("srgan")


def make_strategy(name):
    """tf.distribute strategy by name: auto picks mirrored with more than one GPU, else the default."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise SrganError(f"unknown strategy {name!r}: use auto, default, mirrored or multiworker")


@contextmanager
def stop_requests():
    """Turn SIGINT/SIGTERM into a flag the loop checks, so it can checkpoint before leaving."""
    flag = {"stop": None}

    def handler(signum, _frame):
        flag["stop"] = signal.Signals(signum).name
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def init_generator(trainer, init):
    """Load starting generator weights from a .weights.h5, a .keras file or a run folder (its latest generator)."""
    path = Path(init)
    if path.is_dir():
        path = RunFolder(path).generator_file("latest")
    try:
        if path.suffix == ".keras":
            trainer.generator.set_weights(keras.saving.load_model(path, safe_mode=True, compile=False).get_weights())
        else:
            trainer.generator.load_weights(path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise SrganError(f"--init {init}: not generator weights of this architecture ({reason})") from None


def train(plan: RunPlan, progress=None) -> tuple[int, str | None]:
    """Train per `plan` (from `plan.plan_run`); returns the final step and the signal that stopped it, if any.

    Args:
        plan (RunPlan): the run folder, its resolved config and whether it resumes.
        progress (callable | None): called with (step, total, row) after each step for display.
    """
    run, config = plan.run, plan.config
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
    keras.backend.clear_session()  # fresh layer names and seed generator: the same run in or out of process
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    trainer = Trainer(config, strategy)
    photos = patches.load_photos(config.data, config.hr_size)
    log.info("training on %d photos (%d too small, %d unreadable skipped)",
             len(photos.images), photos.too_small, photos.unreadable)
    val_pairs = load_validation(config.val, trainer.scale, config.val_degrade) if config.val else None
    state = RunState()
    if plan.resume:
        state = load_checkpoint(run.checkpoint, trainer)
    elif config.init:
        init_generator(trainer, config.init)
    if config.ema:
        trainer.average = WeightAverage(trainer.generator, config.ema)
        if plan.resume:
            load_average(run.checkpoint, trainer.average)
    run.create()
    config.save(run.config)
    return _loop(config, run, trainer, photos, val_pairs, state, progress)


def _loop(config, run, trainer, photos, val_pairs, state, progress):
    strategy = trainer.strategy
    ds = data.make_dataset(photos.images, config.hr_size, config.batch_size, config.seed, state.step,
                           trainer.scale, _degradation(config))
    batches = iter(strategy.experimental_distribute_dataset(ds))
    sample_lr, sample_hr = next(iter(data.make_dataset(photos.images, config.hr_size, 1, config.seed + 1,
                                                       degradation=_degradation(config))))
    started = time.monotonic()
    with stop_requests() as stop:
        while state.step < config.steps and not stop["stop"]:
            step = state.step + 1
            lr_now = config.lr_at(state.step)
            trainer.set_learning_rate(lr_now)
            row = {"step": step, "lr": lr_now, **trainer.train_step(*next(batches), step > config.d_warmup)}
            bad = [f"{k} {v}" for k, v in row.items() if k.endswith("loss") and not math.isfinite(v)]
            if bad:
                raise SrganError(f"{bad[0]} at step {step}: stopped; the last good checkpoint "
                                 f"({_checkpointed(run)}) is kept in {run.checkpoint}")
            state.step = step
            _periodic(config, run, trainer, val_pairs, state, row, (sample_lr, sample_hr))
            row["seconds"] = round(time.monotonic() - started, 2)
            if step % config.log_every == 0 or step == config.steps:
                run.log_row(row)
            if progress:
                progress(step, config.steps, {**row, "val_psnr": state.last_psnr})
    _finish(run, trainer, state)
    if stop["stop"]:
        log.info("%s received: checkpoint saved at step %d, continue with --resume", stop["stop"], state.step)
    return state.step, stop["stop"]


def _degradation(config):
    """The run's realistic degradation parameters, or None for the protocol's bicubic LR."""
    if config.degradation == "bicubic":
        return None
    return degradations.params_from_dict(config.degradation_params, "config.json degradation_params")


@contextmanager
def published(trainer):
    """The generator as validated, sampled and saved: holding its weight average when the run keeps one."""
    if trainer.average is None:
        yield trainer.generator
    else:
        with trainer.average.applied(trainer.generator) as generator:
            yield generator


def _periodic(config, run, trainer, val_pairs, state, row, sample):
    step = state.step
    validate_now = val_pairs and step % config.val_every == 0
    sample_now = config.sample_every and step % config.sample_every == 0
    if validate_now or sample_now:  # swapping the average in and out costs two weight copies: only when used
        with published(trainer) as generator:
            if validate_now:
                _validate_and_keep_best(run, generator, val_pairs, state, row)
            if sample_now:
                save_sample(generator, *sample, run.sample_path(step))
    if step % config.checkpoint_every == 0:
        _finish(run, trainer, state)


def _validate_and_keep_best(run, generator, val_pairs, state, row):
    row["val_psnr"], row["val_ssim"] = validate(generator, val_pairs)
    state.last_psnr = row["val_psnr"]
    if state.best_psnr is None or row["val_psnr"] > state.best_psnr:
        state.best_psnr = row["val_psnr"]
        state.best_step = state.step
        run.save_generator(generator, "best_generator")


def _finish(run, trainer, state):
    save_checkpoint(run.checkpoint, trainer, state)  # the generator's own weights: what resume continues
    with published(trainer) as generator:
        run.save_generator(generator, "generator")


def _checkpointed(run):
    step = run.saved_state().step if has_checkpoint(run.checkpoint) else None
    return f"step {step}" if step is not None else "none yet"
