"""The Typer `app` every command module registers on, the error boundary and `main` (imports nothing heavy)."""

import logging
from typing import Annotated

import typer

from srgan_cli import __version__
from srgan_cli.console import error_line
from srgan_cli.errors import SrganError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="4x photo super-resolution: train an SRGAN, export it to ONNX, upscale photos.")


def _version(value: bool):
    if value:
        typer.echo(f"srgan {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False):
    """4x photo super-resolution with an SRGAN."""


def run_or_exit(fn, *args, **kwargs):
    """Call the library; a SrganError becomes one error line and its exit code, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except SrganError as err:
        error_line(str(err))
        raise typer.Exit(err.exit_code) from None



def main():
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    app()
