"""Entry point for `python -m srgan_cli`."""

from srgan_cli.cli import main

main()
