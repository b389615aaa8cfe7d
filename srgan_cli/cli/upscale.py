"""`srgan upscale`: option parsing and progress reporting only (never imports TensorFlow).

The model options (`--model`, `--device`, `--tile`, `--tile-pad`) are declared once here and shared with
`srgan evaluate`; together with the rest they make one `UpscaleSettings`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import Progress

from srgan_cli.cli.app import app, interrupt_exit_code, run_or_exit, sigterm_as_interrupt
from srgan_cli.console import RateColumn, error_line, info_line, make_progress
from srgan_cli.errors import UsageError
from srgan_cli.upscale.formats import format_names, parse_format
from srgan_cli.upscale.models import shipped_models
from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE, INT8_CPU_TILE, INT8_PAD

if TYPE_CHECKING:
    from srgan_cli.upscale.batch import Job, Options, Outcome
    from srgan_cli.upscale.inference import Upscaler, UpscaleSettings

SHIPPED = ", ".join(shipped_models()) or "none"
MODEL_HELP = (f"ONNX model file, or a shipped model by name ({SHIPPED}); default: the shipped default. "
              "For JPEG-compressed or noisy photos use srresnet_x4_real (faithful) or srgan_x4_real (Real-ESRGAN-like "
              "texture, at lower fidelity); for the highest PSNR on clean ones, srresnet_x4.")
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
TileOption = Annotated[str, typer.Option(help="Tile side in LR pixels, 0 for whole image, or auto.",
                                          show_default=f"{DEFAULT_TILE}; {INT8_CPU_TILE} for int8 on the CPU")]
TilePadOption = Annotated[int | None, typer.Option(min=0, help="Context pixels per tile side.",
                                                  show_default=f"{DEFAULT_PAD}; {INT8_PAD} for int8")]
DegridOption = Annotated[bool | None, typer.Option(
    "--degrid/--no-degrid", show_default="as the model's metadata asks: the adversarial srgan_x4_real does",
    help="Take out the faint pattern that repeats with the input's pixel grid (see weights/README.md).")]
ConsistencyOption = Annotated[bool | None, typer.Option(
    "--consistency/--no-consistency", show_default="as the model's metadata asks: the adversarial srgan_x4_real does",
    help="Project the result back onto the input where the input looks clean (not JPEG-damaged or noisy), so that it "
         "downscales to that input: fidelity and tint (see weights/README.md).")]
PRECISION_HELP = ("auto, fp32, int8 or fp16: int8/fp16 run <stem>_int8.onnx / <stem>_fp16.onnx beside the model "
                  "(fp32 when it is missing, with a warning); auto takes int8 on the CPU only where it was timed at "
                  "least 2x faster on this machine (once, cached), fp32 on CUDA.")


class AlphaMode(str, Enum):
    bicubic = "bicubic"
    model = "model"


def parse_tile(text: str) -> int | Literal["default"] | None:
    """--tile: 'auto' (None: sized from memory), 'default' (by precision) or a whole number of LR pixels (0: whole image).

    Raises:
        UsageError: anything else.
    """
    if text == "auto":
        return None
    if text == "default":
        return "default"
    if re.fullmatch(r"[0-9]+", text):  # ASCII digits only: str.isdigit() also takes '²', which int() refuses
        return int(text)
    raise UsageError(f"--tile {text}: use a whole number of LR pixels, 0 (whole image) or auto")


def compression_note(model: str, qualities: dict[Path, int | None]) -> str | None:
    """A note for a model trained on clean photos (`model`) when the photos to do (their JPEG qualities, None for
    other images) include visibly compressed JPEGs, else None."""
    from srgan_cli.upscale.jpeg_quality import DAMAGING_QUALITY

    damaged = [(path, quality) for path, quality in qualities.items()
               if quality is not None and quality <= DAMAGING_QUALITY]
    if not damaged:
        return None
    path, quality = damaged[0]
    if len(qualities) == 1:
        which = f"{path} is a JPEG compressed at quality {quality} or so"
    else:
        todo = len(qualities)
        subject = (f"all {todo} photos to do are JPEGs" if len(damaged) == todo else
                   f"1 of the {todo} photos to do is a JPEG" if len(damaged) == 1 else
                   f"{len(damaged)} of the {todo} photos to do are JPEGs")
        which = f"{subject} compressed at quality {DAMAGING_QUALITY} or below ({path}: about {quality})"
    return (f"note: {which}; {model} learnt clean photos and sharpens compression blocks, which "
            "--model srresnet_x4_real (faithful) or srgan_x4_real (texture) remove")


def clean_model_name(upscaler: Upscaler) -> str | None:
    """The model's name (without a precision suffix) when its metadata says it learnt clean bicubic inputs."""
    meta = upscaler.session.get_modelmeta().custom_metadata_map or {}
    if meta.get("degradation") != "bicubic":
        return None
    choice = upscaler.precision
    return choice.path.stem.removesuffix(f"_{choice.precision}")  # srgan_x4_int8 -> srgan_x4


def _image_header(path: Path) -> tuple[int, int | None]:
    """(pixels, JPEG quality or None) from the image's header: 0 pixels where it cannot be read."""
    from PIL import Image

    from srgan_cli.upscale.jpeg_quality import image_quality
    try:
        with Image.open(path) as im:
            return int(im.size[0] * im.size[1]), image_quality(im)
    except Exception:
        return 0, None


@dataclass
class Tally:
    """What a batch did so far: the counts of the summary line and the files in folders it left alone."""

    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "skipped": 0, "failed": 0})
    ignored: int = 0

    def summary(self) -> str:
        """'3 done, 1 skipped, 0 failed (2 other files in folders ignored: not images, or earlier outputs)'."""
        counts = self.counts
        line = f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
        return line + (f" ({self.ignored} other files in folders ignored: not images, or earlier outputs)"
                       if self.ignored else "")


class Reporter:
    """Turns outcomes into progress, JSON lines, one line per failure and the counts.

    The bars count only the work left: jobs ended before any work (existing outputs, clashes) are counted but never
    enter the totals, and a file that fails or is skipped later leaves the pixel total with its pixels.
    """

    def __init__(self, progress: Progress, as_json: bool, quiet: bool, tally: Tally,
                 clean_model: str | None = None) -> None:
        self.progress, self.as_json, self.quiet, self.tally = progress, as_json, quiet, tally
        self.clean_model = clean_model  # a model that learnt clean photos: JPEG inputs get a note
        self.files = progress.add_task("files", total=0, rate=False)
        self.pixels = progress.add_task("LR pixels", total=0)
        self.expected: dict[Path, int] | None = None  # LR pixels per planned job (None: not planned yet)
        self.pixel_total = 0

    def on_plan(self, todo: list[Job]) -> None:
        """Size the bars from the jobs that will run (image headers only)."""
        headers = {job.source: _image_header(job.source) for job in todo}
        self.expected = {source: pixels for source, (pixels, _) in headers.items()}
        self.progress.update(self.files, total=len(todo))
        self.pixel_total = sum(self.expected.values())
        self.progress.update(self.pixels, total=self.pixel_total)
        qualities = {source: quality for source, (_, quality) in headers.items()}
        note = compression_note(self.clean_model, qualities) if self.clean_model else None
        if note:
            info_line(note, self.quiet)

    def __call__(self, outcome: Outcome) -> None:
        self.tally.counts[outcome.status] += 1
        if self.expected is not None:
            self.progress.advance(self.files)
            if outcome.status != "done":
                self.pixel_total -= self.expected.get(outcome.job.source, 0)
                self.progress.update(self.pixels, total=self.pixel_total, advance=-outcome.lr_pixels)
        if self.as_json:
            print(json.dumps(outcome.as_dict()), flush=True)
        if outcome.status == "failed":
            error_line(f"{outcome.job.source}: {outcome.reason}")
        elif outcome.notes and not self.quiet:
            info_line(f"note: {outcome.job.source}: {'; '.join(outcome.notes)}")

    def on_window(self, lr_pixels: int) -> None:
        """Progress hook of the tiler: LR pixels done (negative: taken back before a retry)."""
        self.progress.advance(self.pixels, lr_pixels)


def make_settings(tile: str = "default", **options: Any) -> UpscaleSettings:
    """`UpscaleSettings` from command-line values.

    Args:
        tile: the --tile text (a number, 'auto' or 'default').
        options: the other `UpscaleSettings` fields.

    Raises:
        UsageError: a value that can never work.
    """
    from srgan_cli.upscale.inference import UpscaleSettings

    return UpscaleSettings(tile=parse_tile(tile), **options)


def open_upscaler(settings: UpscaleSettings, quiet: bool, verbose: bool = False) -> Upscaler:
    """The Upscaler of `settings`; info lines say which device --device auto chose, which tile --tile auto, and
    which precision runs (with why under `verbose`; a warning when the one asked for is missing)."""
    from srgan_cli.upscale.inference import Upscaler

    upscaler = Upscaler.from_settings(settings)
    choice = upscaler.precision
    if verbose:
        info_line(f"device: {upscaler.device}, {choice.line()}", quiet)
        if upscaler.degrid_sigma:
            info_line(f"degrid: sigma {upscaler.degrid_sigma:g} LR px", quiet)
        if upscaler.consistency_passes:
            info_line(f"consistency: {upscaler.consistency_passes} back-projection passes", quiet)
    elif settings.device == "auto":
        info_line(f"device: {upscaler.device}" + (f", precision: {choice.precision}" if choice.precision != "fp32"
                                                  else ""), quiet)
    if choice.fallback:
        info_line(f"warning: --precision {settings.precision}: {choice.reason}", quiet)
    if upscaler.tile_note:
        info_line(upscaler.tile_note, quiet)
    return upscaler


def _run(inputs: list[Path], settings: UpscaleSettings, options: Options, suffix: str | None,
         shard: tuple[int, int] | None, tally: Tally, as_json: bool, quiet: bool, verbose: bool = False) -> None:
    """Open the model, name the outputs after the real scale, clean up after killed runs, and run the batch."""
    from srgan_cli.upscale import batch

    upscaler = run_or_exit(open_upscaler, settings, quiet, verbose)
    options.suffix = suffix if suffix is not None else batch.scale_suffix(settings.outscale or upscaler.scale)
    jobs, tally.ignored = run_or_exit(batch.collect_jobs, inputs, options,
                                      lambda folder: info_line(f"warning: {folder}: no images in this folder", quiet))
    if shard:
        jobs = batch.shard_jobs(jobs, *shard)
    removed = batch.clean_stale_parts(jobs)
    if removed:
        info_line(f"removed {removed} stale temporary files (.part) left by killed runs", quiet)
    with make_progress(quiet or as_json, RateColumn("MP/s", 1e-6)) as progress:
        reporter = Reporter(progress, as_json, quiet, tally, clean_model_name(upscaler))
        for outcome in batch.missing_inputs(inputs):
            reporter(outcome)
        batch.run_batch(jobs, upscaler.upscale_photo, options, reporter, reporter.on_window, reporter.on_plan)


@app.command()
def upscale(
    inputs: Annotated[list[Path], typer.Argument(metavar="INPUT", help="Image files and/or folders (walked recursively).",
                                                 show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output file (one input) or folder. "
                                                   "Default: <stem>_x4.<ext> beside each input (the suffix follows the final scale).")] = None,
    model: Annotated[Path | None, typer.Option(help=MODEL_HELP, show_default=False)] = None,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(metavar="<auto|fp32|int8|fp16>", help=PRECISION_HELP)] = "auto",
    tile: TileOption = "default",
    tile_pad: TilePadOption = None,
    outscale: Annotated[float | None, typer.Option(min=0.01, help="Final scale if not the model's (e.g. 2, 3.5).")] = None,
    tta: Annotated[bool, typer.Option(help="Average the 8 flips/rotations (8x slower).")] = False,
    degrid: DegridOption = None,
    consistency: ConsistencyOption = None,
    alpha: Annotated[AlphaMode, typer.Option(help="How transparency is upscaled.")] = AlphaMode.bicubic,
    suffix: Annotated[str | None, typer.Option(help="Added to output file names in folders. Default: _x<final scale>, e.g. _x4, or _x2 with --outscale 2.", show_default=False)] = None,
    format: Annotated[str | None, typer.Option("--format", metavar=f"<{'|'.join(format_names())}>", help="Output format (default: the input's).", show_default=False)] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 95,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Skip inputs whose output exists (resume a batch).")] = False,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse larger images (decompression bombs).")] = 200_000_000,
    shard: Annotated[str | None, typer.Option(help="Process only part K of N of the inputs: K/N.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: CPUs available).")] = None,
    scale: Annotated[int | None, typer.Option(min=1, help="Model scale, for models without srgan metadata.")] = None,
    layout: Annotated[str | None, typer.Option(help="NHWC or NCHW, for models without metadata.")] = None,
    value_range: Annotated[str | None, typer.Option("--range", help="0,1 or 0,255 or -1,1 (models without metadata).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per file on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say which device and precision run, and why.")] = False,
) -> None:
    """Upscale photos 4x: files, folders (tree mirrored under -o), any mode, seamless tiles."""
    from srgan_cli.upscale import batch

    if overwrite and skip_existing:
        raise typer.BadParameter("choose one of --overwrite and --skip-existing", param_hint="--overwrite")
    settings = run_or_exit(make_settings, model=model, device=device, tile=tile, tile_pad=tile_pad, tta=tta,
                           alpha=alpha.value, threads=threads, scale=scale, layout=layout, value_range=value_range,
                           outscale=outscale, precision=precision, degrid=degrid,
                           consistency=consistency)
    options = batch.Options(out=output, fmt=format, quality=quality, overwrite=overwrite,
                            skip_existing=skip_existing, max_pixels=max_pixels)
    if suffix is not None:
        options.suffix = suffix
    if format:
        run_or_exit(parse_format, format)
    run_or_exit(batch.check_inputs, inputs, options)
    parts = run_or_exit(batch.parse_shard, shard) if shard else None
    tally = Tally()
    with sigterm_as_interrupt():
        try:
            _run(inputs, settings, options, suffix, parts, tally, as_json, quiet, verbose)
        except KeyboardInterrupt as stop:
            error_line("interrupted: finished files are complete, no partial file was left")
            info_line(tally.summary(), quiet)
            raise typer.Exit(interrupt_exit_code(stop)) from None
    info_line(tally.summary(), quiet or as_json)
    if tally.counts["failed"]:
        raise typer.Exit(1)
