"""The Typer `app` every command module registers on, the error boundary, SIGTERM as an interrupt, `--version` and
`main` (imports nothing heavy).

Help text is printed as written (`rich_markup_mode=None`): the commands' help strings carry literal `[default: ...]`
and `pip install 'srgan-cli[eval]'` text that rich markup would swallow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer

from srgan_cli import __version__
from srgan_cli.console import error_line
from srgan_cli.errors import SrganError

T = TypeVar("T")
INTERRUPT_EXIT = 130  # Ctrl-C, as shells report SIGINT
TERMINATE_EXIT = 143  # SIGTERM
_UNSET = object()

app = typer.Typer(no_args_is_help=True, add_completion=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="4x photo super-resolution: train an SRGAN, export it to ONNX, upscale photos.")


def version_lines() -> list[str]:
    """`srgan --version`: the package, ONNX Runtime with its usable providers, and the shipped models."""
    from srgan_cli.upscale.models import default_model_path, shipped_models

    lines = [f"srgan {__version__}"]
    try:
        import onnxruntime

        from srgan_cli.upscale.session import usable_providers

        usable, lacking = usable_providers()
        no_gpu = f" (installed, but no NVIDIA GPU here: {', '.join(lacking)})" if lacking else ""
        lines.append(f"onnxruntime {onnxruntime.__version__}, providers: {', '.join(usable)}{no_gpu}")
        from srgan_cli.upscale.precision import version_line

        lines.append(version_line())
    except ImportError:
        lines.append("onnxruntime: not installed (pip install onnxruntime)")
    default = default_model_path()
    names = [f"{name} (default)" if default is not None and default.stem == name else name
             for name in shipped_models()]
    lines.append(f"models: {', '.join(names) or 'none shipped'}")
    return lines


def _version(value: bool) -> None:
    if value:
        for line in version_lines():
            typer.echo(line)
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the versions, the usable ONNX Runtime providers and the "
                                                    "shipped models, and exit.")] = False) -> None:
    """4x photo super-resolution with an SRGAN."""


def run_or_exit(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the library; a SrganError becomes one error line and its exit code, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except SrganError as err:
        error_line(str(err))
        if err.ends_process_at_once:
            end_process_now(err.exit_code)
        raise typer.Exit(err.exit_code) from None


def end_process_now(code: int) -> None:
    """Flush the output and end the process without the interpreter's shutdown (see LostPeerError)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt (exit code 143, not 130)."""


def interrupt_exit_code(stop: KeyboardInterrupt) -> int:
    """143 for SIGTERM, 130 for Ctrl-C."""
    return TERMINATE_EXIT if isinstance(stop, Terminated) else INTERRUPT_EXIT


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread (once: a second one during the clean-up is
    ignored), so that a command stops as cleanly on `kill` as on Ctrl-C."""
    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    try:
        previous: Any = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = _UNSET
    try:
        yield
    finally:
        if previous is not _UNSET:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def main() -> None:
    """The `srgan` console script."""
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    app()
