"""Terminal output: one stderr console, quiet mode, error lines and rich progress bars.

Messages are printed as written, never read as rich markup: a file named `IMG [draft].png` or a hint such as
`pip install 'srgan-cli[eval]'` keeps its brackets.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err_console = Console(stderr=True, highlight=False, emoji=False)


def error_line(message: str) -> None:
    """One line on stderr, 'error:' in red, the message as written: how every user error is reported."""
    err_console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


def info_line(message: str, quiet: bool = False) -> None:
    """One plain line on stderr, unless quiet."""
    if not quiet:
        err_console.print(message, markup=False, soft_wrap=True)


def make_progress(quiet: bool, *extra_columns: ProgressColumn) -> Progress:
    """A rich progress display on stderr, disabled when quiet or when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), *extra_columns,
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, disable=quiet or not sys.stderr.isatty(), transient=False)


def _significant(value: float) -> str:
    """Three significant digits without an exponent for everyday rates: 4000, 12.3, 2.35, 0.004."""
    return f"{value:.0f}" if value >= 1000 else f"{value:.3g}"


class RateColumn(ProgressColumn):
    """Completed units per second of a task, e.g. 'MP/s' (scale 1e-6) or 'steps/s'.

    Slow rates keep their digits (0.004 MP/s, not 0.00), and while rich has too few recent samples for its rate
    (one window of a big photo can take longer than its 30 s window) the average since the start is shown.
    """

    def __init__(self, unit: str, scale: float = 1.0) -> None:
        super().__init__()
        self.unit, self.scale = unit, scale

    def render(self, task: Task) -> Text:
        """The rate cell of `task` (empty for tasks added with rate=False)."""
        if task.fields.get("rate") is False:
            return Text("")
        speed = task.speed
        if speed is None and task.elapsed:
            speed = task.completed / task.elapsed
        if speed is None:
            return Text(f"- {self.unit}")
        return Text(f"{_significant(speed * self.scale)} {self.unit}")
