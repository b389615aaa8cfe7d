"""The training loop: run folder, resumable checkpoints, signals, NaN guard, validation, logs and samples."""

import csv
import dataclasses
import json
import logging
import math
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.evaluate import degrade, load_hr
from srgan_cli.evaluation.metrics import psnr_y, ssim_y
from srgan_cli.training import data, patches
from srgan_cli.training.averaging import WeightAverage
from srgan_cli.training.checkpoint import has_checkpoint, load_average, load_checkpoint, save_checkpoint
from srgan_cli.training.trainer import Trainer

log = logging.getLogger("srgan")
LOG_FIELDS = ["step", "lr", "g_loss", "content_loss", "adv_loss", "d_loss", "val_psnr", "val_ssim", "seconds"]


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


def load_validation(folder, scale=4):
    """(lr uint8, hr uint8) pairs of a validation folder, LR made with Pillow's bicubic (the eval protocol)."""
    pairs = []
    for path in patches.find_photos(folder):
        hr = load_hr(path, scale)
        pairs.append((degrade(hr, scale), hr))
    if not pairs:
        raise SrganError(f"{folder}: no validation images")
    return pairs


def sr_to_uint8(sr):
    """Generator output in [-1,1] -> uint8 RGB."""
    return np.clip(np.round((np.asarray(sr, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def validate(generator, pairs):
    """Mean Y-PSNR and SSIM (4 px border) of the generator in inference mode over validation pairs."""
    scores = []
    for lr, hr in pairs:
        sr = sr_to_uint8(generator(lr[None].astype(np.float32) / 255.0, training=False)[0])
        scores.append((psnr_y(sr, hr), ssim_y(sr, hr)))
    return tuple(float(v) for v in np.mean(scores, axis=0))


def save_sample(generator, lr, hr, path):
    """LR (nearest-upscaled) | generated | original, side by side, as in the original write-up's figures."""
    sr = sr_to_uint8(generator(lr[:1], training=False)[0])
    hr8 = sr_to_uint8(hr[0])
    lr8 = np.clip(np.round(np.asarray(lr[0]) * 255), 0, 255).astype(np.uint8)
    lr_big = np.asarray(Image.fromarray(lr8).resize(hr8.shape[1::-1], Image.NEAREST))
    Image.fromarray(np.concatenate([lr_big, sr, hr8], axis=1)).save(path)


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


class RunFolder:
    """Paths and writers of runs/<name>/."""

    def __init__(self, root):
        self.root = Path(root)
        self.checkpoint = self.root / "checkpoint"
        self.samples = self.root / "samples"
        self.samples.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "config.json"
        self.csv = self.root / "log.csv"
        self.tb = tf.summary.create_file_writer(str(self.root / "tensorboard"))

    def log_row(self, row):
        new = not self.csv.exists()
        with self.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        with self.tb.as_default(step=row["step"]):
            for key, value in row.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    tf.summary.scalar(key, value)

    def save_generator(self, generator, stem):
        """Write `stem`.keras and `stem`.weights.h5 through temporary names, so a reader never sees half a file."""
        for suffix, save in ((".keras", generator.save), (".weights.h5", generator.save_weights)):
            partial = self.root / f"{stem}.partial{suffix}"
            save(partial)
            os.replace(partial, self.root / f"{stem}{suffix}")


def prepare_run(config, run_dir, resume, overrides=None):
    """Create or reopen a run folder; on resume the saved config wins, except the `overrides` given (and saved)."""
    run = RunFolder(run_dir)
    if resume:
        if not has_checkpoint(run.checkpoint):
            raise SrganError(f"{run_dir}: no checkpoint to resume from")
        saved = dataclasses.replace(type(config).load(run.config), **(overrides or {}))
        saved.save(run.config)
        return run, saved
    if has_checkpoint(run.checkpoint):
        raise SrganError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --name")
    config.save(run.config)
    return run, config


def restart_schedule(config, run, overrides, step):
    """A resume that sets lr or its decay starts the new schedule at the resume step (saved in config.json)."""
    if not set(overrides or {}) & {"lr", "lr_decay_every", "lr_decay_factor"}:
        return config
    config = dataclasses.replace(config, lr_decay_from=step)
    config.save(run.config)
    return config


def init_generator(trainer, init):
    """Load starting generator weights from a .weights.h5, a .keras file or a run folder."""
    path = Path(init)
    if path.is_dir():
        path = path / "generator.weights.h5"
    if not path.exists():
        raise SrganError(f"--init {init}: not found")
    if path.suffix == ".keras":

        trainer.generator.set_weights(keras.saving.load_model(path, safe_mode=True).get_weights())
    else:
        trainer.generator.load_weights(path)


def train(config, run_dir, resume=False, progress=None, overrides=None):
    """Train per `config` into `run_dir`; returns the final step reached.

    Args:
        config (TrainConfig): run configuration (when resuming, the saved one is used instead).
        run_dir (str | Path): the run folder.
        resume (bool): continue from the run folder's checkpoint.
        progress (callable | None): called with (step, total, row) after each step for display.
        overrides (dict | None): on resume, new values for steps, lr, lr_decay_every, lr_decay_factor, ema; a
            new lr or decay counts its decay steps from the resume step.
    """
    run, config = prepare_run(config, run_dir, resume, overrides)
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
    keras.backend.clear_session()  # fresh layer names and seed generator: the same run in or out of process
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    trainer = Trainer(config, strategy)
    photos = patches.load_photos(config.data, config.hr_size)
    log.info("training on %d photos (%d too small, %d unreadable skipped)",
             len(photos.images), photos.too_small, photos.unreadable)
    val_pairs = load_validation(config.val, config.scale) if config.val else None
    state = {"step": 0, "best_psnr": None, "last_psnr": None}
    if resume:
        state = load_checkpoint(run.checkpoint, trainer)
        config = restart_schedule(config, run, overrides, state["step"])
    elif config.init:
        init_generator(trainer, config.init)
    if config.ema:
        trainer.average = WeightAverage(trainer.generator, config.ema)
        if resume:
            load_average(run.checkpoint, trainer.average)
    return _loop(config, run, trainer, photos, val_pairs, state, progress)


def _loop(config, run, trainer, photos, val_pairs, state, progress):
    strategy = trainer.strategy
    ds = data.make_dataset(photos.images, config.hr_size, config.batch_size, config.seed, state["step"], config.scale)
    batches = iter(strategy.experimental_distribute_dataset(ds))
    sample_lr, sample_hr = next(iter(data.make_dataset(photos.images, config.hr_size, 1, config.seed + 1)))
    started = time.monotonic()
    with stop_requests() as stop:
        while state["step"] < config.steps and not stop["stop"]:
            step = state["step"] + 1
            lr_now = config.lr_at(state["step"])
            trainer.set_learning_rate(lr_now)
            row = {"step": step, "lr": lr_now, **trainer.train_step(*next(batches), step > config.d_warmup)}
            bad = [f"{k} {v}" for k, v in row.items() if k.endswith("loss") and not math.isfinite(v)]
            if bad:
                raise SrganError(f"{bad[0]} at step {step}: stopped; the last good checkpoint "
                                 f"(step {_checkpointed_step(run)}) is kept in {run.checkpoint}")
            state["step"] = step
            _periodic(config, run, trainer, val_pairs, state, row, (sample_lr, sample_hr))
            row["seconds"] = round(time.monotonic() - started, 2)
            if step % config.log_every == 0 or step == config.steps:
                run.log_row(row)
            if progress:
                progress(step, config.steps, {**row, "val_psnr": state["last_psnr"]})
    _finish(run, trainer, state)
    if stop["stop"]:
        log.info("%s received: checkpoint saved at step %d, continue with --resume", stop["stop"], state["step"])
    return state["step"]


@contextmanager
def published(trainer):
    """The generator as validated, sampled and saved: holding its weight average when the run keeps one."""
    if trainer.average is None:
        yield trainer.generator
    else:
        with trainer.average.applied(trainer.generator) as generator:
            yield generator


def _periodic(config, run, trainer, val_pairs, state, row, sample):
    step = state["step"]
    validate_now = val_pairs and step % config.val_every == 0
    sample_now = config.sample_every and step % config.sample_every == 0
    if validate_now or sample_now:  # swapping the average in and out costs two weight copies: only when used
        with published(trainer) as generator:
            if validate_now:
                _validate_and_keep_best(run, generator, val_pairs, state, row)
            if sample_now:
                save_sample(generator, *sample, run.samples / f"step_{step:07d}.png")
    if step % config.checkpoint_every == 0:
        _finish(run, trainer, state)


def _validate_and_keep_best(run, generator, val_pairs, state, row):
    row["val_psnr"], row["val_ssim"] = validate(generator, val_pairs)
    state["last_psnr"] = row["val_psnr"]
    if state["best_psnr"] is None or row["val_psnr"] > state["best_psnr"]:
        state["best_psnr"] = row["val_psnr"]
        state["best_step"] = state["step"]
        run.save_generator(generator, "best_generator")


def _finish(run, trainer, state):
    save_checkpoint(run.checkpoint, trainer, state)  # the generator's own weights: what resume continues
    with published(trainer) as generator:
        run.save_generator(generator, "generator")


def _checkpointed_step(run):
    try:
        return json.loads((run.checkpoint / "state.json").read_text())["step"]
    except OSError:
        return "none"
