"""Every int8 copy shipped in weights/ stands in for the fp32 model beside it: its own check against that model, in
its metadata, is within the bound, and it computes the same picture."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB
from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.models import WEIGHTS_DIRS
from tests.conftest import photo_array

SHIPPED = sorted(p for folder in WEIGHTS_DIRS if folder.is_dir() for p in folder.glob("*_int8.onnx"))


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@pytest.mark.parametrize("int8", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_int8_copy_was_checked_against_its_own_fp32_model(int8):
    fp32 = int8.with_name(int8.name.replace("_int8.onnx", ".onnx"))
    meta, base = _meta(int8), _meta(fp32)
    check = json.loads(meta["int8_check"])
    assert meta["precision"] == "int8" and "quantization" in meta
    assert check["reference"] == fp32.name and check["drop_db"] <= check["refuse_db"] <= DEFAULT_REFUSE_DB
    assert meta["scale"] == base["scale"]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-9)))


@pytest.mark.parametrize("int8", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_int8_copy_draws_the_picture_of_its_fp32_model(int8):
    """Closer to its own fp32 model than to any other shipped one (srresnet_x4 and srgan_x4 differ by ~42 dB)."""
    lr = photo_array(40, 40, seed=3).astype(np.float32) / 255.0
    models = sorted(p for p in int8.parent.glob("*.onnx") if not p.stem.endswith(("_int8", "_fp16")))
    sr = Upscaler(int8, device="cpu", threads=1, precision="int8").upscale_array(lr, np.uint8)
    scores = {p.name: _psnr(sr, Upscaler(p, device="cpu", threads=1).upscale_array(lr, np.uint8)) for p in models}
    own = int8.name.replace("_int8.onnx", ".onnx")
    assert max(scores, key=scores.__getitem__) == own and scores[own] > 40, scores


def test_the_default_ships_an_int8_copy():
    assert any(p.name == "srgan_x4_int8.onnx" for p in SHIPPED)
