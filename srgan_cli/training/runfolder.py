"""The run folder runs/NAME/: the only code that knows the file names inside it, and the run's state."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]

LOG_FIELDS = ["step", "lr", "g_loss", "content_loss", "adv_loss", "d_loss", "val_psnr", "val_ssim", "seconds"]
# the optional generator loss terms, logged weighted as f"{name}_term" when the run sets f"{name}_weight"
EXTRA_TERMS = ("lattice", "lowfreq", "colour", "pixel", "overshoot", "ldl", "teacher")
STATE_FILE = "state.json"  # inside each checkpoint folder, written last
LOCK_FILE = ".lock"  # held (flock) by the process training in the run folder
STEP_FOLDER = re.compile(r"step_(\d+)")  # checkpoint/step_0000500/: complete; with a suffix (.tmp, .del, .bad): not
LEGACY_SUFFIXES = ("", ".old", ".tmp")  # before numbered folders: checkpoint/ itself, checkpoint.old, checkpoint.tmp


def write_atomically(save: Callable[[Path], Any], path: str | Path) -> None:
    """Run `save` on a temporary name beside `path` (X.partial.weights.h5 for X.weights.h5), then rename it to `path`,
    so a reader never sees half a file."""
    path = Path(path)
    stem, dot, suffix = path.name.partition(".")
    partial = path.with_name(f"{stem}.partial{dot}{suffix}")
    save(partial)
    os.replace(partial, path)


def step_folder(checkpoints: Path, step: int) -> Path:
    """The checkpoint folder of `step` inside a run's checkpoint/ folder."""
    return Path(checkpoints) / f"step_{step:07d}"


def complete_checkpoints(checkpoints: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint of a run, newest first.

    A numbered folder is complete by its name (it is renamed from `.tmp` only once written); a run saved before
    numbered folders has its checkpoint in checkpoint/ itself or, after a kill between two renames, in
    checkpoint.old or checkpoint.tmp (complete when its state.json, written last, is there).
    """
    checkpoints = Path(checkpoints)
    found = []
    if checkpoints.is_dir():
        for entry in checkpoints.iterdir():
            match = STEP_FOLDER.fullmatch(entry.name)
            if match and (entry / STATE_FILE).is_file():
                found.append((int(match.group(1)), 1, entry))
    for suffix in LEGACY_SUFFIXES:
        legacy = checkpoints.with_name(checkpoints.name + suffix)
        state = _read_state(legacy / STATE_FILE)
        if state is not None:
            found.append((state.step, 0, legacy))
    return [(step, path) for step, _, path in sorted(found, key=lambda f: (f[0], f[1]), reverse=True)]


def _read_state(path: Path) -> RunState | None:
    try:
        return RunState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


@dataclass
class RunState:
    """Where a run stands: saved with every checkpoint, restored on --resume."""

    step: int = 0
    best_psnr: float | None = None
    best_step: int | None = None
    last_psnr: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class RunFolder:
    """Paths and writers of runs/NAME/.

    Args:
        root: the run folder (nothing is created until `create`).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.checkpoint = self.root / "checkpoint"
        self.samples = self.root / "samples"
        self.csv = self.root / "log.csv"
        self.tensorboard = self.root / "tensorboard"
        self.log_fields = list(LOG_FIELDS)  # the columns of a new log.csv (an existing one keeps its own)
        self._writer: Any = None

    def create(self) -> None:
        self.samples.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for one training process (an advisory flock on .lock, gone with the process).

        Raises:
            SrganError: another process holds it (naming its pid), or the folder cannot be made.
        """
        made = [path for path in (self.root, *self.root.parents) if not path.exists()]  # to remove if unused
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / LOCK_FILE, "a+")  # noqa: SIM115  (held open until the run ends)
        except OSError as err:
            raise SrganError(f"cannot write the run folder {self.root}: {err.strerror or err}") from None
        try:
            with handle:
                yield from self._hold(handle)
        finally:
            if made and [p.name for p in self.root.iterdir()] == [LOCK_FILE]:  # a run that failed before writing
                (self.root / LOCK_FILE).unlink()
                for folder in made:
                    with contextlib.suppress(OSError):  # a folder another process wrote into meanwhile stays
                        folder.rmdir()

    def _hold(self, handle: Any) -> Iterator[None]:
        """Take the flock on the open .lock file `handle`, write this pid into it, and hold it while suspended."""
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise SrganError(f"{self.root} is in use by another srgan train (pid {holder}): wait for it to end "
                                 "or stop it, then --resume") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield

    def truncate_log(self, step: int) -> None:
        """Drop the log.csv rows after `step` (a run resumed from an older checkpoint logs those steps again)."""
        if not self.csv.is_file():
            return
        with self.csv.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= step]
        if len(kept) == len(rows):
            return

        def save(path: Path) -> None:
            with path.open("w", newline="") as f:
                csv.writer(f).writerows(kept)

        write_atomically(save, self.csv)

    def generator_file(self, which: str = "best", suffix: str = ".weights.h5") -> Path:
        """The best generator by validation PSNR (when the run kept one) or the latest."""
        best = self.root / f"best_generator{suffix}"
        return best if which == "best" and best.is_file() else self.root / f"generator{suffix}"

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(step, folder) of the newest complete checkpoint, or None."""
        found = complete_checkpoints(self.checkpoint)
        return found[0] if found else None

    def saved_state(self, which: str = "latest") -> RunState:
        """The state of the newest checkpoint; for the best generator, with the step it was saved at."""
        latest = self.latest_checkpoint()
        state = (_read_state(latest[1] / STATE_FILE) if latest else None) or RunState()
        if which == "best" and self.generator_file("best").name.startswith("best") and state.best_step is not None:
            state = dataclasses.replace(state, step=state.best_step)
        return state

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def log_row(self, row: dict[str, Any]) -> None:
        """Append a row to log.csv (an existing file keeps its columns) and its finite numbers to TensorBoard."""
        new = not self.csv.is_file() or self.csv.stat().st_size == 0
        fields = self.log_fields if new else self._csv_header()
        with self.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        with self._tensorboard().as_default(step=row["step"]):
            import tensorflow as tf

            for key, value in row.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    tf.summary.scalar(key, value)

    def log_image(self, name: str, step: int, image: Any) -> None:
        """An HxWx3 uint8 image (a sample triptych) to TensorBoard."""
        import tensorflow as tf

        with self._tensorboard().as_default(step=step):
            tf.summary.image(name, image[None], step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _tensorboard(self) -> Any:
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.tensorboard))
        return self._writer

    def _csv_header(self) -> list[str]:
        with self.csv.open(newline="") as f:
            header = next(csv.reader(f), None)
        return header or self.log_fields

    def save_generator(self, generator: Any, stem: str) -> None:
        """Write `stem`.keras and `stem`.weights.h5 through temporary names, so a reader never sees half a file."""
        for suffix, save in ((".keras", generator.save), (".weights.h5", generator.save_weights)):
            write_atomically(save, self.root / f"{stem}{suffix}")
