"""`srgan evaluate`: option parsing and the score tables; the protocol lives in `srgan_cli.evaluation`."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.cli.upscale import parse_tile
from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE


def _score_table(title, rows, methods):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("image", min_width=6)
    for method in methods:
        table.add_column(f"{method}\nPSNR  SSIM  grid  tint  halo", justify="right")
    for name, scores in rows:
        table.add_row(name, *(f"{s.psnr:.2f}  {s.ssim:.4f}  {s.grid:4.1f}  {s.tint:4.2f}  {s.halo:4.2f}"
                              for s in (scores[m] for m in methods)))
    return table


@app.command()
def evaluate(
    folders: Annotated[list[Path], typer.Argument(help="Folders of HR images (e.g. Set5 Set14 BSD100).")],
    model: Annotated[Optional[list[Path]], typer.Option(help="ONNX model(s) to score (default: the shipped one); "
                                                       "repeat to compare.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    tile: Annotated[str, typer.Option(help="Tile side in LR pixels, 0 or auto.")] = str(DEFAULT_TILE),
    tile_pad: Annotated[int, typer.Option(min=0)] = DEFAULT_PAD,
    save: Annotated[Optional[Path], typer.Option(help="Write bicubic | model | original crops here.")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write all scores as JSON.")] = None,
    per_image: Annotated[bool, typer.Option(help="Show a row per image, not only folder means.")] = True,
    tta: Annotated[bool, typer.Option(help="Also score each model with the 8-way self-ensemble (NAME+tta).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Score models against bicubic: x4 bicubic LR, Y-channel PSNR/SSIM with a 4 px border (standard protocol)."""
    from rich.console import Console

    from srgan_cli.evaluation.evaluate import evaluate_folder, mean_scores
    from srgan_cli.upscale.inference import Upscaler

    models = model or [None]
    names = [m.stem if m else "default" for m in models]
    modes = (False, True) if tta else (False,)
    upscalers = {name + ("+tta" if t else ""): run_or_exit(Upscaler, m, device=device, tile=parse_tile(tile),
                                                           tile_pad=tile_pad, tta=t)
                 for name, m in zip(names, models) for t in modes}
    console, report = Console(), {}
    for folder in folders:
        results = run_or_exit(evaluate_folder, folder, upscalers, save)
        means = mean_scores(results)
        methods = list(means)
        rows = [(r.name, r.scores) for r in results] if per_image else []
        if not quiet:
            console.print(_score_table(f"{folder.name} ({len(results)} images)", [*rows, ("mean", means)], methods))
        report[folder.name] = {"images": {r.name: {m: vars(s) for m, s in r.scores.items()} for r in results},
                               "mean": {m: vars(s) for m, s in means.items()}}
    if json_file:
        from srgan_cli.upscale.imaging import write_atomic
        write_atomic((json.dumps(report, indent=2) + "\n").encode(), json_file)
