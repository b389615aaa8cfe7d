"""Every int8 copy shipped in weights/ stands in for the fp32 model beside it: its own check against that model, in
its metadata, is within the bound, and it computes the same picture."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from srgan_cli.evaluation.metrics import psnr_y
from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB
from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.models import WEIGHTS_DIRS
from srgan_cli.upscale.precision import precision_of, variant_path
from tests.conftest import photo_array

SHIPPED = sorted(p for folder in WEIGHTS_DIRS if folder.is_dir() for p in folder.glob("*_int8.onnx"))


def _fp32_models(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.onnx") if precision_of(p) == "fp32")


def _fp32_of(int8: Path) -> Path:
    """The shipped fp32 model whose int8 copy (`variant_path`) `int8` is."""
    return next(p for p in _fp32_models(int8.parent) if variant_path(p, "int8") == int8)


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@pytest.mark.parametrize("int8", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_int8_copy_was_checked_against_its_own_fp32_model(int8):
    fp32 = _fp32_of(int8)
    meta, base = _meta(int8), _meta(fp32)
    check = json.loads(meta["int8_check"])
    assert meta["precision"] == "int8" and "quantization" in meta
    assert check["reference"] == fp32.name and check["drop_db"] <= check["refuse_db"] <= DEFAULT_REFUSE_DB
    assert meta["scale"] == base["scale"]


@pytest.mark.parametrize("int8", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_int8_copy_draws_the_picture_of_its_fp32_model(int8):
    """Closer to its own fp32 model than to any other (the default's copy: 51 dB Y-PSNR to srgan_x4, 44 to srresnet)."""
    lr = photo_array(40, 40, seed=3).astype(np.float32) / 255.0
    sr = Upscaler(int8, device="cpu", threads=1, precision="int8").upscale_array(lr, np.uint8)
    scores = {p.name: min(psnr_y(sr, Upscaler(p, device="cpu", threads=1).upscale_array(lr, np.uint8)), 99.0)
              for p in _fp32_models(int8.parent)}
    own = _fp32_of(int8).name
    assert max(scores, key=scores.__getitem__) == own and scores[own] > 40, scores


def test_the_default_ships_an_int8_copy():
    assert any(p.name == "srgan_x4_int8.onnx" for p in SHIPPED)


def _wide_photo(rows: int = 64) -> np.ndarray:
    """A strip of the example photos at their own resolution, 1651 LR px wide: the defaults tile it in 4 windows."""
    from PIL import Image

    examples = Path(__file__).resolve().parents[2] / "examples"
    coffee, cat = (np.asarray(Image.open(examples / f"{name}.png").convert("RGB"), np.float32) / 255.0
                   for name in ("coffee", "chelsea"))
    return np.concatenate([coffee[:rows], cat[100:100 + rows], coffee[250:250 + rows]], axis=1)


@pytest.mark.parametrize("int8", [p for p in SHIPPED if p.name == "srgan_x4_int8.onnx"], ids=["srgan_x4_int8"])
def test_int8_tiles_at_the_defaults_match_the_whole_image(int8):
    lr = _wide_photo()
    tiled = Upscaler(int8, device="cpu", threads=1, precision="int8")
    assert tiled.tile < lr.shape[1] and tiled.tile_pad >= 40  # the defaults really split this strip
    whole = Upscaler(int8, device="cpu", threads=1, precision="int8", tile=0).upscale_array(lr, np.uint8)
    difference = np.abs(tiled.upscale_array(lr, np.uint8).astype(int) - whole.astype(int))
    assert difference.max() <= 1, (difference.max(), int((difference > 1).sum()))
