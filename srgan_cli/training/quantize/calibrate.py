"""Calibration: LR crops of photos, ONNX Runtime's pre-processing and static QDQ quantization, quietly."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.quantize.graph import open_session
from srgan_cli.training.quantize.recipe import Recipe
from srgan_cli.upscale.contract import Contract

CALIBRATION_BATCH = 8  # crops per calibration pass (ONNX Runtime's histograms otherwise hold every output at once)
MIN_CROP = 16  # LR pixels: a smaller photo is left out of calibration rather than shrink every photo's crops to it


def split_photos(folder: Path, recipe: Recipe, rng: np.random.Generator | None = None) -> tuple[list[Path], list[Path]]:
    """(the photos drawn for calibration, the rest: held out), both sorted; the draw is seeded by the recipe.

    Args:
        folder: the calibration folder.
        recipe: its `photos` and `seed` decide the draw.
        rng: the generator to draw with (default: a fresh one seeded by `recipe.seed`).
    """
    from srgan_cli.training.patches import find_photos

    files = find_photos(folder)
    chosen = set((rng or np.random.default_rng(recipe.seed)).permutation(len(files))[:recipe.photos].tolist())
    return ([f for i, f in enumerate(files) if i in chosen], [f for i, f in enumerate(files) if i not in chosen])


def calibration_crops(folder: Path, contract: Contract, recipe: Recipe) -> list[np.ndarray]:
    """Random LR crops (bicubic x1/scale of the photos: the model's real input), fed as the contract says. With
    `recipe.damage`, the photos take turns: clean LR, then LR damaged by each spec (as `srgan evaluate --degrade`).

    Every crop has one side (ONNX Runtime's calibrators stack them): `recipe.crop`, from the drawn photos whose LR is
    that large; only when none is, the smallest LR side of them all. Photos whose LR is under MIN_CROP pixels a side
    are left out.

    Args:
        folder: the calibration photos.
        contract: the model's input contract (its scale and how it is fed).
        recipe: the draw (`photos`, `crops`, `crop`, `seed`) and the damage.

    Raises:
        SrganError: no readable photo in `folder` large enough.
    """
    rng = np.random.default_rng(recipe.seed)
    lrs = _calibration_lrs(split_photos(folder, recipe, rng)[0], contract.scale, recipe)
    if not lrs:
        least = min(recipe.crop, MIN_CROP) * contract.scale
        raise SrganError(f"{folder}: no readable photo of at least {least}x{least} pixels to calibrate on")
    full = [lr for lr in lrs if min(lr.shape[:2]) >= recipe.crop]
    lrs = full or lrs  # small photos shrink every crop only when no photo is big enough for the recipe's
    side = min(recipe.crop, *(min(lr.shape[:2]) for lr in lrs))
    crops = []
    for lr in lrs:
        for _ in range(recipe.crops):
            y, x = (int(rng.integers(0, n - side + 1)) for n in lr.shape[:2])
            crop = lr[y:y + side, x:x + side][None].astype(np.float32) / 255.0
            crops.append(contract.feed(crop)[contract.input_name])
    return crops


def _calibration_lrs(photos: list[Path], scale: int, recipe: Recipe) -> list[np.ndarray]:
    """The LR (uint8 HxWx3) of each readable photo with an LR side of at least min(recipe.crop, MIN_CROP), damaged
    in turns as `recipe.damage` says.

    Args:
        photos: the photos drawn for calibration.
        scale: the model's scale.
        recipe: its `crop` and `damage`.
    """
    from srgan_cli.evaluation.evaluate import damaged_lr, parse_damage
    from srgan_cli.upscale.imaging import read_rgb8

    turns = [(), *parse_damage(recipe.damage).values()] if recipe.damage else [()]
    least, lrs = min(recipe.crop, MIN_CROP), []
    for index, path in enumerate(photos):
        try:
            hr = read_rgb8(path)
        except SrganError:
            continue
        if min(hr.shape[:2]) >= least * scale:
            lrs.append(damaged_lr(hr, scale, turns[index % len(turns)], path.stem))
    return lrs

@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the ONNX Runtime quantizer (it logs through the root logger and prints its calibration steps)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)

class CropReader:
    """ONNX Runtime CalibrationDataReader over prepared crops, read in strides (`set_range`)."""

    def __init__(self, name: str, crops: Sequence[np.ndarray]) -> None:
        self.name, self.crops = name, list(crops)
        self.items: Iterator[np.ndarray] = iter(self.crops)

    def __len__(self) -> int:
        return len(self.crops)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.items = iter(self.crops[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        crop = next(self.items, None)
        return None if crop is None else {self.name: crop}


def quantize_static_qdq(source: Path, target: Path, crops: Sequence[np.ndarray], recipe: Recipe, reduce_range: bool,
                     exclude: list[str], overrides: dict[str, Any]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[recipe.method]
    batch = min(CALIBRATION_BATCH, len(crops))
    extra: dict[str, Any] = {"CalibStridedMinMax": batch, "TensorQuantOverrides": overrides}
    if recipe.method == "percentile":
        extra["CalibPercentile"] = recipe.percentile
    if recipe.activations == "s8":
        extra["ActivationSymmetric"] = True
    name = open_session(str(source)).get_inputs()[0].name
    crops = list(crops)[:len(crops) // batch * batch]  # the strided calibration wants whole strides
    with quiet():
        quantize_static(str(source), str(target), CropReader(name, crops), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv", "Relu"] if recipe.fold_prelu else ["Conv"], per_channel=True,
                        reduce_range=reduce_range,
                        activation_type=QuantType.QInt8 if recipe.activations == "s8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=method,
                        extra_options=extra)


def preprocess(source: Path, target: Path) -> Any:
    """ONNX Runtime's quantization pre-processing (batch norms folded into convs), metadata kept."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    original = onnx.load(str(source))
    with quiet():
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    model = onnx.load(str(target))
    taken = {n.name for n in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:  # exclusions go by node name
            node.name = next(f"{node.op_type}_{index}{tag}" for tag in ("", "_", "__", "___")
                             if f"{node.op_type}_{index}{tag}" not in taken)
            taken.add(node.name)
    present = {p.key for p in model.metadata_props}
    for prop in original.metadata_props:
        if prop.key not in present:
            model.metadata_props.add(key=prop.key, value=prop.value)
    return model

