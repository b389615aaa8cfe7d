"""Training checkpoints: generator, discriminator, both optimizers and the loop state, written atomically."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np

from srgan_cli.training.runfolder import STATE_FILE, RunState


def _save_optimizer(optimizer, path):
    np.savez(path, *[np.asarray(v.numpy()) for v in optimizer.variables])


def _load_optimizer(optimizer, variables, path):
    if not optimizer.built:
        optimizer.build(variables)
    with np.load(path) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{path}: {len(values)} optimizer variables saved, {len(optimizer.variables)} expected")
    for var, value in zip(optimizer.variables, values, strict=False):
        var.assign(value)


def save_checkpoint(folder, trainer, state):
    """Write trainer weights, optimizer slots and `state` (a RunState) to `folder`, replacing it atomically."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainer.generator.save_weights(tmp / "generator.weights.h5")
    _save_optimizer(trainer.g_optimizer, tmp / "g_optimizer.npz")
    if trainer.discriminator is not None:
        trainer.discriminator.save_weights(tmp / "discriminator.weights.h5")
        _save_optimizer(trainer.d_optimizer, tmp / "d_optimizer.npz")
    if trainer.average is not None:
        trainer.average.save(tmp / "ema.npz")
    (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state), indent=2))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _complete(folder):
    folder = Path(folder)
    if not (folder / STATE_FILE).exists() and folder.with_name(folder.name + ".old").exists():
        return folder.with_name(folder.name + ".old")  # killed between the two renames
    return folder


def load_checkpoint(folder, trainer):
    """Restore what save_checkpoint wrote; returns the saved RunState."""
    folder = _complete(folder)
    trainer.generator.load_weights(folder / "generator.weights.h5")
    _load_optimizer(trainer.g_optimizer, trainer.generator.trainable_variables, folder / "g_optimizer.npz")
    if trainer.discriminator is not None:
        trainer.discriminator.load_weights(folder / "discriminator.weights.h5")
        _load_optimizer(trainer.d_optimizer, trainer.discriminator.trainable_variables, folder / "d_optimizer.npz")
    return RunState.from_dict(json.loads((folder / STATE_FILE).read_text()))


def has_checkpoint(folder):
    folder = Path(folder)
    return (folder / STATE_FILE).exists() or (folder.with_name(folder.name + ".old") / STATE_FILE).exists()


def load_average(folder, average):
    """Restore a run's weight average; a run that starts keeping one on resume starts it at the current weights."""
    saved = _complete(folder) / "ema.npz"
    if saved.exists():
        average.load(saved)
