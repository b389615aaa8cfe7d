"""Checkpoints under kills: one at every disk operation of a save, and a second one at every operation of the resumed
run's saves; the newest k kept; old layouts resumed; a checkpoint that cannot be used set aside. No TensorFlow: a
fake trainer whose every weight holds the step it was saved at, so a restore that mixes checkpoints shows."""

import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from srgan_cli.errors import SrganError
from srgan_cli.training.averaging import WeightAverage
from srgan_cli.training.checkpoint import has_checkpoint, load_average, load_checkpoint, save_checkpoint
from srgan_cli.training.runfolder import RunFolder, RunState


class Killed(BaseException):
    """The process died here (a BaseException: no `except Exception` in the code under test can swallow it)."""


class Disk:
    """Counts the disk operations of the checkpoint code and kills the 'process' at the `kill_at`-th one, leaving
    what a kill in the middle of it would leave (half a file, a folder half deleted)."""

    def __init__(self, monkeypatch):
        self.count, self.kill_at, self.armed = 0, None, False
        real = SimpleNamespace(replace=os.replace, rmtree=shutil.rmtree, savez=np.savez, write_text=Path.write_text,
                               mkdir=Path.mkdir, unlink=Path.unlink)

        def half_file(path):
            return lambda: Path(path).write_bytes(b"PK\x03\x04 half")

        def one_file_gone(path):
            files = [p for p in Path(path).rglob("*") if p.is_file()] if Path(path).is_dir() else []
            return (lambda: files[0].unlink()) if files else None

        def savez(path, *arrays):
            self.tick(half_file(path))
            return real.savez(path, *arrays)

        def replace(source, target):
            self.tick()
            return real.replace(source, target)

        def rmtree(path, **kwargs):
            self.tick(one_file_gone(path))
            return real.rmtree(path, **kwargs)

        def write_text(path, text, *args, **kwargs):
            self.tick(half_file(path))
            return real.write_text(path, text, *args, **kwargs)

        def mkdir(path, *args, **kwargs):
            self.tick()
            return real.mkdir(path, *args, **kwargs)

        def unlink(path, *args, **kwargs):
            self.tick()
            return real.unlink(path, *args, **kwargs)

        for owner, name, fake in ((os, "replace", replace), (shutil, "rmtree", rmtree), (np, "savez", savez),
                                  (Path, "write_text", write_text), (Path, "mkdir", mkdir), (Path, "unlink", unlink)):
            monkeypatch.setattr(owner, name, fake)

    def tick(self, partial=None):
        if not self.armed:
            return
        self.count += 1
        if self.count == self.kill_at:
            if partial:
                partial()
            raise Killed(self.count)

    def arm(self, kill_at):
        self.count, self.kill_at, self.armed = 0, kill_at, True

    def disarm(self):
        self.armed = False
        return self.count


class FakeModel:
    def __init__(self, disk):
        self.disk, self.values = disk, [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]

    @property
    def trainable_variables(self):
        return self.values

    def get_weights(self):
        return [v.copy() for v in self.values]

    def set_weights(self, values):
        self.values = [np.array(v, np.float32) for v in values]

    def save_weights(self, path):
        self.disk.tick(lambda: Path(path).write_bytes(b'{"half'))
        with Path(path).open("w") as f:
            f.write(json.dumps([v.tolist() for v in self.values]))

    def load_weights(self, path):
        self.set_weights(json.loads(Path(path).read_text()))  # garbage: a ValueError, as h5py/Keras raise

    def __call__(self, x, training=False):
        with np.errstate(over="ignore"):
            return x * self.values[0].sum()


class FakeVariable:
    def __init__(self):
        self.value = np.zeros(3, np.float32)

    def numpy(self):
        return self.value

    def assign(self, value):
        self.value = np.array(value)


def fake_trainer(disk):
    optimizers = [SimpleNamespace(built=True, variables=[FakeVariable(), FakeVariable()]) for _ in range(2)]
    trainer = SimpleNamespace(generator=FakeModel(disk), discriminator=FakeModel(disk), g_optimizer=optimizers[0],
                              d_optimizer=optimizers[1])
    trainer.average = WeightAverage(trainer.generator, 0.5)
    return trainer


def set_step(trainer, step):
    """Every weight, slot and average of the trainer holds `step`."""
    for model in (trainer.generator, trainer.discriminator):
        model.set_weights([np.full_like(v, step) for v in model.values])
    for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
        for v in optimizer.variables:
            v.assign(np.full(3, step, np.float32))
    trainer.average.values = [np.full_like(v, step) for v in trainer.average.values]


def holds(trainer):
    values = [*trainer.generator.values, *trainer.discriminator.values, *trainer.average.values,
              *[v.value for o in (trainer.g_optimizer, trainer.d_optimizer) for v in o.variables]]
    steps = {float(x) for v in values for x in np.ravel(v)}
    assert len(steps) == 1, f"a restore that mixes checkpoints: {sorted(steps)}"
    return int(steps.pop())


def attempt(disk, folder, trainer, steps, kill_at):
    """Save `steps` in turn, killed at disk operation `kill_at` (None: never); the steps whose save returned."""
    done = []
    disk.arm(kill_at)
    try:
        for step in steps:
            set_step(trainer, step)
            save_checkpoint(folder, trainer, RunState(step=step))
            done.append(step)
    except Killed:
        pass
    finally:
        disk.disarm()
    return done


def resume(folder, trainer, at_least, context):
    assert has_checkpoint(folder), f"{context}: no checkpoint to resume from"
    set_step(trainer, -1)
    state = load_checkpoint(folder, trainer)
    load_average(folder, trainer.average)
    assert holds(trainer) == state.step >= at_least, context
    return state.step


@pytest.fixture
def scratch(tmp_path):
    """A folder in memory when the machine has one (the kill test saves a few thousand checkpoints)."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        yield Path(folder)


def test_a_kill_at_any_disk_operation_then_another_while_resuming_keeps_a_checkpoint(scratch, monkeypatch):
    disk = Disk(monkeypatch)
    trainer = fake_trainer(disk)
    attempt(disk, scratch / "count" / "checkpoint", trainer, [1, 2, 3, 4], None)
    attempt(disk, scratch / "count" / "checkpoint", trainer, [5, 6], None)
    ops = disk.count  # of two saves, the second pruning the oldest of three
    assert ops > 12
    for n in range(1, ops + 1):  # a kill at each operation of two saves, then at each of the resumed run's first
        for m in range(ops // 2 + 3):
            folder = scratch / f"{n}_{m}" / "checkpoint"
            attempt(disk, folder, trainer, [1, 2], None)
            done = attempt(disk, folder, trainer, [3, 4], n)
            step = resume(folder, trainer, max(done, default=2), f"killed at operation {n}")
            done = attempt(disk, folder, trainer, range(step + 1, 7), m or None)
            context = f"killed at operation {n}, then at operation {m} of the resumed run"
            step = resume(folder, trainer, max(done, default=step), context)
            attempt(disk, folder, trainer, range(step + 1, 7), None)
            assert resume(folder, trainer, 6, context) == 6
            shutil.rmtree(folder.parent)


def test_only_the_newest_k_checkpoints_stay_and_nothing_half_written(tmp_path, monkeypatch):
    disk = Disk(monkeypatch)
    trainer = fake_trainer(disk)
    folder = tmp_path / "checkpoint"
    for step in range(1, 6):
        set_step(trainer, step)
        save_checkpoint(folder, trainer, RunState(step=step), keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000004", "step_0000005"]
    assert RunFolder(tmp_path).saved_state().step == 5


def test_resume_sets_aside_an_unusable_newest_checkpoint_and_takes_the_one_before(tmp_path, monkeypatch, caplog):
    disk = Disk(monkeypatch)
    trainer = fake_trainer(disk)
    folder = tmp_path / "checkpoint"
    attempt(disk, folder, trainer, [1, 2, 3], None)
    (folder / "step_0000003" / "generator.weights.h5").write_bytes(b"\x00garbage")
    assert resume(folder, trainer, 2, "garbage newest") == 2
    assert "step_0000003" in caplog.text and (folder / "step_0000003.bad").is_dir()
    (folder / "step_0000002" / "ema.npz").unlink()
    np.savez(folder / "step_0000002" / "ema.npz", *[np.full((2, 3), np.nan), np.zeros(4)])
    set_step(trainer, -1)
    assert load_checkpoint(folder, trainer).step == 1  # a non-finite average is no good either
    shutil.rmtree(folder / "step_0000001")
    with pytest.raises(SrganError, match="no usable checkpoint"):
        load_checkpoint(folder, trainer)


def test_saving_refuses_non_finite_weights_slots_averages_or_output(tmp_path, monkeypatch):
    disk = Disk(monkeypatch)
    trainer = fake_trainer(disk)
    folder = tmp_path / "checkpoint"
    attempt(disk, folder, trainer, [1], None)
    poisons = [lambda t: t.discriminator.values[1].fill(np.inf),
               lambda t: t.g_optimizer.variables[0].value.fill(np.nan),
               lambda t: t.average.values[0].fill(np.nan),
               lambda t: t.generator.values[0].fill(3e38)]  # finite weights, infinite output
    for poison in poisons:
        set_step(trainer, 2)
        poison(trainer)
        with pytest.raises(SrganError, match=r"not finite after step 2.*newest good checkpoint is step 1 \("):
            save_checkpoint(folder, trainer, RunState(step=2))
    assert [p.name for p in folder.iterdir()] == ["step_0000001"]


def old_layout(disk, tmp_path, trainer, step, suffix=""):
    """A checkpoint as saved before numbered folders: the files in checkpoint/ itself (or .old, .tmp)."""
    attempt(disk, tmp_path / "scratch", trainer, [step], None)
    legacy = tmp_path / f"checkpoint{suffix}"
    shutil.copytree(tmp_path / "scratch" / f"step_{step:07d}", legacy, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "scratch")
    return tmp_path / "checkpoint"


@pytest.mark.parametrize("suffix", ["", ".old", ".tmp"])
def test_runs_saved_in_the_old_layout_resume_and_move_to_numbered_folders(tmp_path, monkeypatch, suffix):
    disk = Disk(monkeypatch)
    trainer = fake_trainer(disk)
    folder = old_layout(disk, tmp_path, trainer, 7, suffix)
    assert has_checkpoint(folder) and RunFolder(tmp_path).saved_state().step == 7
    assert resume(folder, trainer, 7, "old layout") == 7
    attempt(disk, folder, trainer, [8, 9, 10], None)
    assert resume(folder, trainer, 10, "numbered") == 10
    assert not (folder / "state.json").exists() and not (folder / "generator.weights.h5").exists()
    assert not folder.with_name(f"checkpoint{suffix}").exists() or suffix == ""
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000008", "step_0000009", "step_0000010"]
