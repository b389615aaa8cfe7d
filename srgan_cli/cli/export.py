"""`srgan export`: option parsing only; TensorFlow is imported inside the command."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.cli.train import quiet_tensorflow
from srgan_cli.console import info_line
from srgan_cli.upscale.files import check_writable


class Which(str, Enum):
    best = "best"
    latest = "latest"


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="Run folder, .keras file, or .weights.h5 with its config.json.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")] = Path("model.onnx"),
    which: Annotated[Which, typer.Option(help="In a run folder: the best (validation PSNR) or latest generator.")] = Which.best,
    fp16: Annotated[bool, typer.Option(help="Store float16 weights (for GPUs); I/O stays float32.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Convert a trained generator to ONNX, verified against Keras before it is written."""
    run_or_exit(check_writable, output)  # before the minutes of conversion, not after
    quiet_tensorflow()
    from srgan_cli.training.export import export as export_model

    result = run_or_exit(export_model, source, output, which.value, fp16)
    info_line(f"wrote {output}: max |onnx - keras| = {result['max_abs_diff']:.2e} "
              f"(tolerance {result['tolerance']:g}), {result['nodes']} nodes", quiet)
