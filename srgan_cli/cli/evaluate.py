"""`srgan evaluate`: option parsing and the score tables; the protocol lives in `srgan_cli.evaluation.evaluate`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.cli.upscale import (
    SHIPPED,
    ConsistencyOption,
    DegridOption,
    DeviceOption,
    TileOption,
    TilePadOption,
    make_settings,
    open_upscaler,
)
from srgan_cli.console import info_line, make_progress
from srgan_cli.evaluation.degradations import SPEC_HELP

if TYPE_CHECKING:
    from rich.table import Table

    from srgan_cli.evaluation.evaluate import ImageResult, Score
    from srgan_cli.upscale.inference import Upscaler


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None or value != value else format(value, spec)  # value != value: nan


def _cell(score: Score, niqe: bool) -> str:
    cell = f"{score.psnr:.2f}  {score.ssim:.4f}  {score.grid:4.1f}  {score.tint:4.2f}  {score.halo:4.2f}"
    return f"{cell}  {_number(score.niqe, '5.2f')}" if niqe else cell


def _score_table(title: str, rows: list[ImageResult], methods: list[str], niqe: bool) -> Table:
    from rich.markup import escape
    from rich.table import Table

    from srgan_cli.evaluation.evaluate import ORIGINAL

    table = Table(title=escape(title), title_justify="left")  # names are shown as they are, never as markup
    table.add_column("image", min_width=6, overflow="fold")
    for method in methods:
        table.add_column(escape(f"{method}\nPSNR  SSIM  grid  tint  halo" + ("  NIQE" if niqe else "")),
                         justify="right")
    if niqe:
        table.add_column(f"{ORIGINAL}\nNIQE", justify="right")
    for row in rows:
        cells = [_cell(row.scores[m], niqe) for m in methods]
        if niqe:
            cells.append(_number(row.original_niqe, ".2f"))
        table.add_row(escape(row.name), *cells)
    return table


def _title(folder: Path, count: int, spec: str) -> str:
    from srgan_cli.evaluation.evaluate import CLEAN

    damage = "" if spec == CLEAN else f", LR damaged by {spec}"
    return f"{folder.name} ({count} images{damage})"


@app.command()
def evaluate(
    folders: Annotated[list[Path], typer.Argument(help="Folders of HR images (e.g. Set5 Set14 BSD100).")],
    model: Annotated[list[Path] | None, typer.Option(help=f"ONNX model file(s) or shipped model name(s) ({SHIPPED}) to score (default: the shipped default); repeat to compare.", show_default=False)] = None,
    device: DeviceOption = "auto",
    tile: TileOption = "default",
    tile_pad: TilePadOption = None,
    degrid: DegridOption = None,
    consistency: ConsistencyOption = None,
    degrade: Annotated[list[str] | None, typer.Option(metavar="<spec>", help=f"Damage the LR after the bicubic downscale, the same way for every run (repeat: one table each; 'clean': none; default: clean only). SPEC: {SPEC_HELP}.")] = None,
    niqe: Annotated[bool, typer.Option("--niqe", help="Also score NIQE (no reference, lower = more natural) for every method and the originals.")] = False,
    save: Annotated[Path | None, typer.Option(help="Write bicubic | model | original crops here.")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write all scores as JSON (folder -> spec -> images/mean).")] = None,
    per_image: Annotated[bool, typer.Option(help="Show a row per image, not only folder means.")] = True,
    tta: Annotated[bool, typer.Option(help="Also score each model with the 8-way self-ensemble (NAME+tta).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Score models against bicubic: x4 bicubic LR, Y-channel PSNR/SSIM with a 4 px border (standard protocol)."""
    from srgan_cli.evaluation.evaluate import check_folders, folder_report, method_names, parse_damage, write_json
    from srgan_cli.upscale.files import check_writable
    from srgan_cli.upscale.precision import precision_of

    damage = run_or_exit(parse_damage, degrade or [])
    run_or_exit(check_folders, folders)
    for target, is_folder in ((json_file, False), (save, True)):
        if target is not None:
            run_or_exit(check_writable, target, is_folder)
    base = run_or_exit(make_settings, device=device, tile=tile, tile_pad=tile_pad, degrid=degrid,
                      consistency=consistency)
    models: list[Path | None] = [*model] if model else [None]
    names = run_or_exit(method_names, models)
    modes = (False, True) if tta else (False,)
    upscalers = {name + ("+tta" if t else ""):  # each file as given: an `_int8.onnx` file is scored as int8
                 run_or_exit(open_upscaler, replace(base, model=m, tta=t, precision=precision_of(Path(m or ""))), True)
                 for name, m in zip(names, models, strict=True) for t in modes}
    report: dict[str, dict[str, Any]] = {}
    for folder in folders:
        by_spec = _evaluate_one(folder, upscalers, save, damage, niqe, quiet)
        report[folder.name] = {spec: folder_report(results) for spec, results in by_spec.items()}
        if not quiet:
            _print_tables(folder, by_spec, per_image, niqe)
    if json_file:
        run_or_exit(write_json, report, json_file)


def _evaluate_one(folder: Path, upscalers: dict[str, Upscaler], save: Path | None, damage: dict[str, Any],
                  niqe: bool, quiet: bool) -> dict[str, list[ImageResult]]:
    """One folder through the protocol, with a progress bar (on a terminal) and a note per image skipped."""
    from srgan_cli.evaluation.evaluate import evaluate_folder
    from srgan_cli.upscale.imaging import find_images

    with make_progress(quiet) as progress:
        task = progress.add_task(folder.name, total=len(find_images(folder)))
        return run_or_exit(evaluate_folder, folder, upscalers, save, damage=damage, with_niqe=niqe,
                           on_image=lambda _: progress.advance(task),
                           on_skip=lambda line: info_line(f"note: {line}", quiet))


def _print_tables(folder: Path, by_spec: dict[str, list[ImageResult]], per_image: bool, niqe: bool) -> None:
    from rich.console import Console

    from srgan_cli.evaluation.evaluate import mean_result

    console = Console()
    for spec, results in by_spec.items():
        rows = [*(results if per_image else []), mean_result(results)]
        console.print(_score_table(_title(folder, len(results), spec), rows, list(rows[0].scores), niqe))
