"""Terminal output: one stderr console, quiet mode, error lines and rich progress bars."""

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err_console = Console(stderr=True, highlight=False)


def error_line(message):
    """One red line on stderr: how every user error is reported."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)


def info_line(message, quiet=False):
    if not quiet:
        err_console.print(message, markup=False, soft_wrap=True)


def make_progress(quiet, *extra_columns):
    """A rich progress display on stderr, disabled when quiet or when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *extra_columns,
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, disable=quiet or not sys.stderr.isatty(), transient=False)


class RateColumn(ProgressColumn):
    """Completed units per second of a task, e.g. 'MP/s' (scale 1e-6) or 'steps/s'."""

    def __init__(self, unit, scale=1.0):
        super().__init__()
        self.unit, self.scale = unit, scale

    def render(self, task):
        if task.fields.get("rate") is False:
            return Text("")
        return Text(f"{(task.speed or 0) * self.scale:.2f} {self.unit}")
