"""The `srgan` command line: one thin Typer module per command, registered on the app of `cli.app`."""

from srgan_cli.cli import evaluate, export, train, upscale  # noqa: F401  (each registers its command)
from srgan_cli.cli.app import app, main

__all__ = ["app", "main"]
