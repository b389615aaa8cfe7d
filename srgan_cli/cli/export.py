"""`srgan export`: option parsing only; TensorFlow and the quantizer are imported inside the command."""

from __future__ import annotations

import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from srgan_cli.cli.app import app, run_or_exit
from srgan_cli.cli.train import quiet_tensorflow
from srgan_cli.console import info_line
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale.files import check_writable

HELD_OUT = 16  # held-out calibration-folder photos the int8 check uses when --check-photos is not given


class Which(str, Enum):
    best = "best"
    latest = "latest"


class LastConv(str, Enum):
    tiers = "tiers"
    float = "float"
    int8 = "int8"


class Stream(str, Enum):
    float = "float"
    int8 = "int8"


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="Run folder, .keras file, or .weights.h5 with its config.json; with --int8 also an fp32 .onnx from srgan export.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="ONNX file to write. Default: model.onnx; with --int8, <stem>_int8.onnx beside an .onnx SOURCE, else model_int8.onnx.", show_default=False)] = None,
    which: Annotated[Which, typer.Option(help="In a run folder: the best (validation PSNR) or latest generator.")] = Which.best,
    fp16: Annotated[bool, typer.Option(help="Store float16 weights (for GPUs); I/O stays float32.")] = False,
    int8: Annotated[bool, typer.Option(help="Write a statically quantized int8 model for CPUs (QDQ, int8 per-channel weights), its recipe in the ONNX metadata; refused if it loses more than --max-drop against fp32.")] = False,
    calibration: Annotated[Path | None, typer.Option(help="With --int8: photos of the training distribution; their bicubic LR crops calibrate the int8 ranges.", show_default=False)] = None,
    check_photos: Annotated[Path | None, typer.Option(help=f"With --int8: held-out photos to compare int8 with fp32 on. Default: up to {HELD_OUT} calibration-folder photos not drawn for calibration.", show_default=False)] = None,
    max_drop: Annotated[float, typer.Option(min=0.0, help="With --int8: the largest mean Y-PSNR drop against fp32 accepted, in dB.")] = 0.05,
    reference: Annotated[Path | None, typer.Option(help="With --int8: the fp32 .onnx the int8 copy stands in for, checked against (default: SOURCE); e.g. the teacher of a ReLU student distilled for int8.", show_default=False)] = None,
    last_conv: Annotated[LastConv, typer.Option(help="With --int8: the last conv in int8 with a tiered output (faster, less memory), kept in float32 (the most accurate), or plain int8.")] = LastConv.tiers,
    percentile: Annotated[float, typer.Option(min=90.0, max=100.0, help="With --int8: the percentile of the activations each int8 range is calibrated to.")] = 99.99,
    tiers: Annotated[int, typer.Option(min=2, max=16, help="With --int8 and --last-conv tiers: the value ranges the last conv's output is split into (each 8 bits).")] = 4,
    stream: Annotated[Stream, typer.Option(help="With --int8: the residual stream (the blocks' Adds) in float32 (the most accurate) or quantized too (faster).")] = Stream.float,
    calibration_degrade: Annotated[list[str] | None, typer.Option(help="With --int8, repeatable: also calibrate on LR damaged by this srgan evaluate --degrade spec (e.g. jpeg:75), photos taking turns with clean LR; for models made for damaged photos.", show_default=False)] = None,
    float_conv: Annotated[list[str] | None, typer.Option(help="With --int8, repeatable: a conv kept in float32 (conv:I, the I-th in graph order, negative from the end; first; last; or a node name). Default: conv:0, conv:1, conv:-4 and conv:-3, the sensitive ones of an SRResNet.", show_default=False)] = None,
    degrid: Annotated[float, typer.Option(min=0.0, max=4.0, metavar="SIGMA", help="Record in the metadata that srgan upscale should take the LR-grid pattern out of this model's results, with this sigma in LR pixels (1.5 for an adversarial model with a grid score over 7 dB; see weights/README.md); 0: not. An int8 copy of an .onnx keeps that file's.")] = 0.0,
    consistency: Annotated[int, typer.Option(min=0, max=16, metavar="PASSES", help="Record in the metadata that srgan upscale should project this model's results back onto their input this many times where the input looks clean (10 for an adversarial model; see weights/README.md); 0: not. An int8 copy of an .onnx keeps that file's.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (never a file of SOURCE or --reference).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Convert a trained generator to ONNX, verified against Keras before it is written (--int8: also quantized)."""
    int8_only = {"--calibration": calibration, "--calibration-degrade": calibration_degrade,
                 "--check-photos": check_photos, "--reference": reference, "--float-conv": float_conv}
    run_or_exit(_check_int8_options, int8, fp16, int8_only)
    run_or_exit(_check_metadata, source, int8, {"--degrid": degrid, "--consistency": consistency})
    target = output or _default_output(source, int8)
    from srgan_cli.training.export import check_output  # light: TensorFlow loads later

    run_or_exit(check_writable, target)  # before the minutes of conversion, not after
    run_or_exit(check_output, target, [source, reference], overwrite)
    if int8:
        recipe = {"last_conv": last_conv.value, "fp32_stream": stream is Stream.float, "percentile": percentile,
                  "tiers": tiers, "damage": tuple(calibration_degrade or ())}
        if float_conv:
            recipe["exclude"] = tuple(float_conv)
        run_or_exit(_export_int8, source, target, which.value, calibration, check_photos, max_drop, recipe, quiet,
                    reference, (degrid, consistency), overwrite)
        return
    quiet_tensorflow()
    from srgan_cli.training.export import export as export_model

    result = run_or_exit(export_model, source, target, which.value, fp16, degrid, overwrite, consistency=consistency)
    info_line(f"wrote {target}: max |onnx - keras| = {result['max_abs_diff']:.2e} "
              f"(tolerance {result['tolerance']:g}), {result['nodes']} nodes", quiet)


def _default_output(source: Path, int8: bool) -> Path:
    if not int8:
        return Path("model.onnx")
    from srgan_cli.upscale.precision import variant_path  # where `srgan upscale --precision int8` looks for it

    return variant_path(source if source.suffix == ".onnx" else Path("model.onnx"), "int8")


def _check_int8_options(int8: bool, fp16: bool, int8_only: dict[str, Any]) -> None:
    """Usage errors of the --int8 options, before anything runs.

    Args:
        int8, fp16: the two flags.
        int8_only: the values of the options that go with --int8 only, by flag ('--calibration': None, ...).

    Raises:
        UsageError: --int8 with --fp16, --int8 without a calibration folder, its options without --int8, or a photo
            folder that is not one or holds no photo.
    """
    if not int8:
        if any(int8_only.values()):
            raise UsageError(f"{', '.join(int8_only)} go with --int8")
        return
    if fp16:
        raise UsageError("choose one of --int8 and --fp16")
    calibration, reference = int8_only["--calibration"], int8_only["--reference"]
    if calibration is None:
        raise UsageError("--int8 needs --calibration DIR: photos of the training distribution")
    if reference is not None and (reference.suffix != ".onnx" or not reference.is_file()):
        raise UsageError(f"--reference {reference}: not an .onnx file")
    for flag in ("--calibration", "--check-photos"):
        _check_photo_folder(flag, int8_only[flag])


def _check_photo_folder(flag: str, folder: Path | None) -> None:
    """A photo folder option, before the minutes of calibration: a folder with photos in it (or not given).

    Args:
        flag: the option, for the message.
        folder: its value.

    Raises:
        UsageError: `folder` is not a folder or holds no photo.
    """
    from srgan_cli.training.patches import find_photos

    if folder is None:
        return
    if not folder.is_dir():
        raise UsageError(f"{flag} {folder}: not a folder")
    if not find_photos(folder):
        raise UsageError(f"{flag} {folder}: no photos in it")


def _check_metadata(source: Path, int8: bool, asked: dict[str, float]) -> None:
    """--degrid or --consistency with --int8 of an .onnx is refused: the copy takes the metadata of the file it is
    made from."""
    for flag, value in asked.items():
        if int8 and value and source.suffix == ".onnx":
            raise UsageError(f"{flag}: the int8 copy of {source.name} keeps that file's {flag[2:]} metadata")


def _export_int8(source: Path, output: Path, which: str, calibration: Path, check_photos: Path | None,
                 max_drop: float, recipe_options: dict[str, Any], quiet: bool, reference: Path | None = None,
                 refine: tuple[float, int] = (0.0, 0), overwrite: bool = False) -> None:
    """Quantize `source` (an fp32 .onnx, or a generator exported to fp32 first), check it, write it (over an existing
    file only with `overwrite`); `refine`: the --degrid sigma and --consistency passes its metadata asks for.

    Raises:
        SrganError: the export, the quantization or the check fails; nothing is written then.
    """
    from srgan_cli.training.quantize import Recipe, quantize_model
    from srgan_cli.training.quantize.calibrate import split_photos

    recipe = Recipe(**recipe_options)
    held_out: Path | list[Path] | None = check_photos
    if held_out is None:
        held_out = split_photos(calibration, recipe)[1][:HELD_OUT]
        if not held_out:
            raise SrganError(f"{calibration}: every photo is drawn for calibration ({recipe.photos} at most), none "
                             "is left to check the int8 model on: pass --check-photos DIR or add photos")
    with tempfile.TemporaryDirectory(prefix="srgan-export-") as tmp:
        fp32 = source
        if source.suffix != ".onnx":
            quiet_tensorflow()
            from srgan_cli.training.export import export as export_model

            fp32 = Path(tmp) / "fp32.onnx"
            export_model(source, fp32, which, False, refine[0], consistency=refine[1])
        elif not source.is_file():
            raise SrganError(f"{source}: no such ONNX file")
        report = quantize_model(fp32, output, calibration, recipe, check_photos=held_out, refuse=max_drop,
                                reference=reference, overwrite=overwrite)
    check = report.check or {}
    info_line(f"wrote {output}: int8 ({len(report.float_convs)} convs kept in float32), Y-PSNR {check['int8_psnr']:.2f} "
              f"dB vs fp32 {check['fp32_psnr']:.2f} dB ({check['reference']}) on {check['photos']} photos ({check['folder']}; drop "
              f"{check['drop_db']:.3f} dB, bound {max_drop:g}); {report.seconds:.0f} s", quiet)
