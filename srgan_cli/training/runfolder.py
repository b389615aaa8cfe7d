"""The run folder runs/NAME/: the only code that knows the file names inside it, and the run's state."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_FIELDS = ["step", "lr", "g_loss", "content_loss", "adv_loss", "d_loss", "val_psnr", "val_ssim", "seconds"]
STATE_FILE = "state.json"  # inside checkpoint/


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
        self._writer = None

    def create(self) -> None:
        self.samples.mkdir(parents=True, exist_ok=True)

    def generator_file(self, which: str = "best", suffix: str = ".weights.h5") -> Path:
        """The best generator by validation PSNR (when the run kept one) or the latest."""
        best = self.root / f"best_generator{suffix}"
        return best if which == "best" and best.is_file() else self.root / f"generator{suffix}"

    def saved_state(self, which: str = "latest") -> RunState:
        """The state of the last checkpoint; for the best generator, with the step it was saved at."""
        state_file = self.checkpoint / STATE_FILE
        state = RunState.from_dict(json.loads(state_file.read_text())) if state_file.is_file() else RunState()
        if which == "best" and self.generator_file("best").name.startswith("best") and state.best_step is not None:
            state = dataclasses.replace(state, step=state.best_step)
        return state

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def log_row(self, row: dict[str, Any]) -> None:
        """Append a row to log.csv and its finite numbers to TensorBoard."""
        import tensorflow as tf

        new = not self.csv.exists()
        with self.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.tensorboard))
        with self._writer.as_default(step=row["step"]):
            for key, value in row.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    tf.summary.scalar(key, value)

    def save_generator(self, generator: Any, stem: str) -> None:
        """Write `stem`.keras and `stem`.weights.h5 through temporary names, so a reader never sees half a file."""
        for suffix, save in ((".keras", generator.save), (".weights.h5", generator.save_weights)):
            partial = self.root / f"{stem}.partial{suffix}"
            save(partial)
            os.replace(partial, self.root / f"{stem}{suffix}")
