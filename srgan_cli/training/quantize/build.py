"""`quantize_model`: an `srgan export` model to a checked static int8 (QDQ) copy, its recipe in the metadata."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.quantize.calibrate import calibration_crops, preprocess, quantize_static_qdq
from srgan_cli.training.quantize.check import check_against_fp32
from srgan_cli.training.quantize.graph import (
    drop_node,
    fold_prelu,
    keep_float_stream,
    open_session,
    resolve_convs,
    tier_last_conv,
)
from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB, SENSITIVE, QuantizeReport, Recipe
from srgan_cli.upscale.contract import read_contract
from srgan_cli.upscale.precision import cpu_has_vnni


def _recipe_record(recipe: Recipe, reduce_range: bool, float_convs: list[str], crops: int) -> dict[str, Any]:
    import onnx
    import onnxruntime

    record = asdict(recipe)
    record.update(reduce_range=reduce_range, calibration_crops=crops, float_convs=float_convs,
                  weights="int8 symmetric per-channel", format="QDQ", onnxruntime=onnxruntime.__version__,
                  onnx=onnx.__version__, activations={"u8": "uint8 asymmetric", "s8": "int8 symmetric"}
                  [recipe.activations])
    record["exclude"], record["damage"] = list(recipe.exclude), list(recipe.damage)  # as JSON reads them back
    return record


def _set_metadata(model: Any, values: dict[str, str]) -> None:
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        model.metadata_props.add(key=key, value=value)


def quantize_model(fp32_onnx: Path, output: Path, calibration_dir: Path, recipe: Recipe | None = None,
                   check_photos: Path | Sequence[Path] | None = None,
                   refuse: float = DEFAULT_REFUSE_DB, reference: Path | None = None,
                   overwrite: bool = False) -> QuantizeReport:
    """Write a statically quantized (QDQ, int8 per-channel weights) copy of an SR model.

    Args:
        fp32_onnx: the float32 model (an `srgan export` file: its metadata contract is kept).
        output: the int8 ONNX file to write (only once it is built and, with `check_photos`, accepted).
        calibration_dir: photos (HR, e.g. the training photos) whose bicubic LR crops calibrate the ranges.
        recipe: how to calibrate and quantize (default: `Recipe()`, the measured best).
        check_photos: held-out HR photos (a folder or files, Set5/Set14-like) to compare against fp32 before writing.
        refuse: the largest Y-PSNR drop in dB accepted on `check_photos`.
        reference: the float32 model the int8 copy stands in for, checked against (default: `fp32_onnx`). A student
            distilled for int8 (e.g. a ReLU copy of a PReLU model) is checked against its teacher.
        overwrite: replace an existing `output` (never `fp32_onnx` or `reference`); False: never, not even a file
            that appeared meanwhile.

    Returns:
        What was done, with the check's numbers.

    Raises:
        SrganError: unreadable model or photos, the int8 model loses more than `refuse` dB, or `output` exists
            (without `overwrite`) or is an input.
    """
    import onnx

    from srgan_cli.training.export import check_output, write_output

    check_output(output, [fp32_onnx, reference], overwrite)
    started = time.perf_counter()
    recipe = recipe or Recipe()
    reduce_range = (not cpu_has_vnni()) if recipe.reduce_range is None else recipe.reduce_range
    with tempfile.TemporaryDirectory(prefix="srgan-quant-") as tmp:
        try:
            model = preprocess(Path(fp32_onnx), Path(tmp) / "pre.onnx")
        except Exception as err:
            raise SrganError(f"{fp32_onnx}: cannot prepare the model ({str(err).splitlines()[0][:160]})") from None
        contract = read_contract(open_session(model))  # as `srgan upscale` reads it
        crops = calibration_crops(Path(calibration_dir), contract, recipe)
        int8, float_convs = _build_int8(model, crops, recipe, reduce_range, Path(tmp))
        record = _recipe_record(recipe, reduce_range, float_convs, len(crops))
        _set_metadata(int8, {"precision": "int8", "quantization": json.dumps(record, sort_keys=True)})
        onnx.checker.check_model(int8)
        check = None
        if check_photos is not None:
            onnx.save(int8, str(Path(tmp) / "checked.onnx"))
            against = Path(reference or fp32_onnx)
            check = check_against_fp32(against, Path(tmp) / "checked.onnx", check_photos, refuse=refuse)
            check["reference"] = against.name
            _set_metadata(int8, {"int8_check": json.dumps(check, sort_keys=True)})
        write_output(int8.SerializeToString(), output, overwrite)
    ops: dict[str, int] = {}
    for node in int8.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return QuantizeReport(Path(output), record, ops, float_convs, time.perf_counter() - started, check)


def _build_int8(model: Any, crops: Sequence[np.ndarray], recipe: Recipe, reduce_range: bool,
                tmp: Path) -> tuple[Any, list[str]]:
    """The QDQ model of a pre-processed float model: tiers, exclusions, calibration, the float stream.

    Returns:
        (the int8 ModelProto, the convs left in float32).
    """
    import onnx

    exclude = resolve_convs(model, recipe.exclude, strict=recipe.exclude != SENSITIVE)
    last = next(n for n in reversed(model.graph.node) if n.op_type == "Conv")
    if recipe.fold_prelu:
        fold_prelu(model, [*exclude, last.name])
    overrides: dict[str, Any] = {}
    added: list[str] = []  # the tiers' float Clip and summing conv
    if recipe.last_conv == "tiers" and last.name not in exclude:
        tensor, added = tier_last_conv(model, last, crops, recipe.tiers)
        zero = np.array(-128, np.int8) if recipe.activations == "s8" else np.array(0, np.uint8)
        overrides[tensor] = [{"scale": np.array(1 / 255, np.float32), "zero_point": zero}]
    elif recipe.last_conv == "float" and last.name not in exclude:
        exclude.append(last.name)
    onnx.save(model, str(tmp / "prepared.onnx"))
    quantize_static_qdq(tmp / "prepared.onnx", tmp / "int8.onnx", crops, recipe, reduce_range, exclude + added,
                     overrides)
    int8 = onnx.load(str(tmp / "int8.onnx"))
    if added:
        drop_node(int8, added[0])  # the Clip: its input is now uint8 in [0, 1] already
    if recipe.fp32_stream:
        keep_float_stream(int8)
    return int8, exclude

