"""Training checkpoints: generator, discriminator, both optimizers, the weight average and the loop state.

Each checkpoint is a folder checkpoint/step_NNNNNNN/, written whole as step_NNNNNNN.tmp and then renamed, so a kill
at any moment (and another while the resumed run saves again) leaves every complete checkpoint complete; the newest
complete one is what --resume continues. The newest `keep` stay: an older one is renamed away (.del) before it is
deleted, so a kill while pruning never leaves half a checkpoint under a complete name. Nothing is saved unless every
weight, optimizer slot and average is finite and the generator's output on a probe is too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.runfolder import STATE_FILE, STEP_FOLDER, RunState, complete_checkpoints, step_folder

GENERATOR, DISCRIMINATOR = "generator.weights.h5", "discriminator.weights.h5"
G_OPTIMIZER, D_OPTIMIZER, AVERAGE = "g_optimizer.npz", "d_optimizer.npz", "ema.npz"
FILES = (GENERATOR, DISCRIMINATOR, G_OPTIMIZER, D_OPTIMIZER, AVERAGE)
PROBE = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)  # an LR input in [0, 1]
log = logging.getLogger("srgan")


LOSS_SCALE_VARIABLES = 4  # a LossScaleOptimizer's own: iteration, learning_rate, step_counter, dynamic_scale


def _slots(optimizer: Any) -> Any:
    """The Adam inside a float16 run's LossScaleOptimizer, or the optimizer itself: what a checkpoint keeps, so that
    a run can resume with or without --mixed-precision, on any machine (the loss scale starts afresh)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _save_optimizer(optimizer: Any, path: Path) -> None:
    np.savez(path, *[np.asarray(v.numpy()) for v in _slots(optimizer).variables])


def _load_optimizer(optimizer: Any, variables: Any, path: Path) -> None:
    if not optimizer.built:
        optimizer.build(variables)
    slots = _slots(optimizer).variables
    values = _load_arrays(path)
    if len(values) == len(slots) + LOSS_SCALE_VARIABLES:  # saved whole from a LossScaleOptimizer (before session 15)
        values = values[LOSS_SCALE_VARIABLES:]
    if len(values) != len(slots):
        raise ValueError(f"{path}: {len(values)} optimizer variables saved, {len(slots)} expected")
    for var, value in zip(slots, values, strict=True):
        var.assign(value)


def _load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _finite(arrays: Iterable[Any]) -> bool:
    return all(np.isfinite(np.asarray(a)).all() for a in arrays)


def output_finite(generator: Any) -> bool:
    """Whether the generator's output on a fixed probe is finite (finite but huge weights can still give NaN)."""
    return _finite([generator(PROBE, training=False)])


def not_finite(trainer: Any) -> str | None:
    """What of the trainer is not finite ("generator weights", "generator output", ...), or None when all is."""
    parts = [("generator weights", trainer.generator.get_weights()),
             ("generator optimizer state", [v.numpy() for v in trainer.g_optimizer.variables])]
    if trainer.discriminator is not None:
        parts += [("discriminator weights", trainer.discriminator.get_weights()),
                  ("discriminator optimizer state", [v.numpy() for v in trainer.d_optimizer.variables])]
    if trainer.average is not None:
        parts.append(("weight average (EMA)", trainer.average.values))
    for what, arrays in parts:
        if not _finite(arrays):
            return what
    return None if output_finite(trainer.generator) else "generator output"


def resume_hint(folder: str | Path) -> str:
    """Where a stopped run can go back to: the newest complete checkpoint, by step and folder."""
    found = complete_checkpoints(folder)
    if not found:
        return "no checkpoint was saved yet (start again, perhaps with a lower --lr)"
    step, path = found[0]
    return f"the newest good checkpoint is step {step} ({path}); --resume continues from it"


def save_checkpoint(folder: str | Path, trainer: Any, state: RunState, keep: int = 3) -> Path:
    """Write the trainer and `state` as checkpoint/step_NNNNNNN/ inside `folder`, then keep the newest `keep`.

    Raises:
        SrganError: a weight, optimizer slot, the average or the generator's output is not finite (nothing written).
    """
    folder = Path(folder)
    bad = not_finite(trainer)
    if bad:
        raise SrganError(f"{bad} not finite after step {state.step}: stopped without saving it; "
                         f"{resume_hint(folder)}")
    final = step_folder(folder, state.step)
    if not final.is_dir():  # a complete one of this step holds this very state (a bad one was set aside on load)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        trainer.generator.save_weights(tmp / GENERATOR)
        _save_optimizer(trainer.g_optimizer, tmp / G_OPTIMIZER)
        if trainer.discriminator is not None:
            trainer.discriminator.save_weights(tmp / DISCRIMINATOR)
            _save_optimizer(trainer.d_optimizer, tmp / D_OPTIMIZER)
        if trainer.average is not None:
            trainer.average.save(tmp / AVERAGE)
        (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state), indent=2))
        os.replace(tmp, final)
    prune(folder, keep)
    return final


def prune(folder: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints, and what killed saves and prunes left behind."""
    folder = Path(folder)
    for _, path in complete_checkpoints(folder)[keep:]:
        _set_aside(folder, path, ".del")
    leftovers = [p for p in folder.iterdir() if STEP_FOLDER.fullmatch(p.stem) and p.suffix in (".tmp", ".del")]
    leftovers += folder.parent.glob(f"{folder.name}*.del")
    legacy_tmp = folder.with_name(folder.name + ".tmp")
    if legacy_tmp.is_dir() and not (legacy_tmp / STATE_FILE).is_file():
        leftovers.append(legacy_tmp)
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    if (folder / "state.del.json").is_file():  # an old-layout checkpoint in checkpoint/ itself, set aside to prune
        for name in FILES:
            (folder / name).unlink(missing_ok=True)
        (folder / "state.del.json").unlink()


def _set_aside(folder: Path, path: Path, suffix: str) -> None:
    """Take a checkpoint out of the complete ones with one rename (.del: then delete it; .bad: keep it to look at)."""
    if path == folder:  # the old layout's checkpoint/ itself, which now also holds the numbered folders
        os.replace(path / STATE_FILE, path / f"state{suffix}.json")
        return
    target = path.with_name(path.name + suffix)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(path, target)
    if suffix == ".del":
        shutil.rmtree(target, ignore_errors=True)


def load_checkpoint(folder: str | Path, trainer: Any, set_aside: bool = True) -> RunState:
    """Restore the newest usable checkpoint into the trainer and return its RunState.

    A checkpoint that cannot be read or holds non-finite values is set aside (renamed .bad) with a warning and the
    next older one is tried.

    Args:
        folder: the run's checkpoint folder.
        trainer: the Trainer to restore into.
        set_aside: rename unusable checkpoints (False: only skip them, as workers other than the chief do).

    Raises:
        SrganError: no usable checkpoint.
    """
    folder = Path(folder)
    for _, path in complete_checkpoints(folder):
        try:
            state = _restore(path, trainer)
            average = path / AVERAGE
            bad = not_finite(trainer) or (None if not average.is_file() or _finite(_load_arrays(average))
                                          else "weight average (EMA)")
            if bad is None:
                return state
            reason = f"{bad} not finite"
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        if set_aside:
            log.warning("checkpoint %s is unusable (%s): set aside as .bad, trying the one before", path, reason)
            _set_aside(folder, path, ".bad")
    raise SrganError(f"{folder}: no usable checkpoint to resume from")


def _restore(path: Path, trainer: Any) -> RunState:
    state = RunState.from_dict(json.loads((path / STATE_FILE).read_text()))
    trainer.generator.load_weights(path / GENERATOR)
    _load_optimizer(trainer.g_optimizer, trainer.generator.trainable_variables, path / G_OPTIMIZER)
    if trainer.discriminator is not None:
        trainer.discriminator.load_weights(path / DISCRIMINATOR)
        _load_optimizer(trainer.d_optimizer, trainer.discriminator.trainable_variables, path / D_OPTIMIZER)
    return state


def has_checkpoint(folder: str | Path) -> bool:
    return bool(complete_checkpoints(folder))


def load_average(folder: str | Path, average: Any) -> None:
    """Restore a run's weight average from its newest checkpoint (call after load_checkpoint); a run that starts
    keeping one on resume starts it at the current weights (load_checkpoint has set aside one whose file is
    unreadable)."""
    found = complete_checkpoints(folder)
    if found and (found[0][1] / AVERAGE).is_file():
        average.adopt(_load_arrays(found[0][1] / AVERAGE), found[0][1] / AVERAGE)
