"""Terminal output: one stderr console, quiet mode, error lines and rich progress bars."""

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

err_console = Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """One red line on stderr: how every user error is reported."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)


def info_line(message: str, quiet: bool = False) -> None:
    """One plain line on stderr, unless quiet."""
    if not quiet:
        err_console.print(message, markup=False, soft_wrap=True)


def make_progress(quiet: bool, *extra_columns: ProgressColumn) -> Progress:
    """A rich progress display on stderr, disabled when quiet or when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *extra_columns,
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, disable=quiet or not sys.stderr.isatty(), transient=False)


class RateColumn(ProgressColumn):
    """Completed units per second of a task, e.g. 'MP/s' (scale 1e-6) or 'steps/s'."""

    def __init__(self, unit: str, scale: float = 1.0) -> None:
        super().__init__()
        self.unit, self.scale = unit, scale

    def render(self, task: Task) -> Text:
        if task.fields.get("rate") is False:
            return Text("")
        return Text(f"{(task.speed or 0) * self.scale:.2f} {self.unit}")
