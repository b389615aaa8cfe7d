"""The `srgan` command line: thin Typer commands that validate options and call the library."""

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


from srgan_cli import cli_train as _cli_train  # noqa: E402,F401  (registers train/export)
from srgan_cli import cli_upscale as _cli_upscale  # noqa: E402,F401  (registers upscale/evaluate)


def main():
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    app()
