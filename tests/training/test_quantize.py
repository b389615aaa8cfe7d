"""int8 quantization of a tiny Keras-free ONNX model: the graph runs quantized, stays within the bound, carries the
contract and the recipe, and a model beyond the bound is refused."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.training import quantize
from srgan_cli.training.quantize import Recipe, check_against_fp32, quantize_model
from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model

FAST = Recipe(photos=4, crops=2, crop=24)


def _folder(path, count, side, seed, flat=False):
    path.mkdir()
    for i in range(count):
        pixels = np.full((side, side, 3), 128, np.uint8) if flat else photo_array(side, side, seed=seed + i)
        Image.fromarray(pixels).save(path / f"p{i}.png")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A depth-4 x4 model (five convs with the pixel-spreading one) with srgan metadata, and photo folders."""
    root = tmp_path_factory.mktemp("quant")
    model = make_sr_model(root / "tiny.onnx", depth=4, kernel=3, metadata={**SRGAN_META, "source": "test"})
    return {"model": model, "calib": _folder(root / "calib", 4, 128, seed=10),
            "check": _folder(root / "check", 2, 96, seed=50), "root": root}


@pytest.fixture(scope="module")
def int8(tiny):
    out = tiny["root"] / "tiny.int8.onnx"
    report = quantize_model(tiny["model"], out, tiny["calib"], FAST, check_photos=tiny["check"])
    return out, report


def test_quantized_graph_runs(tiny, int8):
    out, report = int8
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert report.ops["QuantizeLinear"] > 0 and report.float_convs  # the sensitive convs stayed float
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    lr = np.random.default_rng(0).random((1, 10, 14, 3), dtype=np.float32)
    reference = ort.InferenceSession(str(tiny["model"]), providers=["CPUExecutionProvider"])
    got, expected = (s.run(None, {"lr": lr})[0] for s in (session, reference))
    assert got.shape == expected.shape == (1, 40, 56, 3)
    assert np.abs(got - expected).max() < 0.05


def test_within_the_recorded_bound(tiny, int8):
    out, report = int8
    assert report.check["drop_db"] <= report.check["refuse_db"] == 0.05
    again = check_against_fp32(tiny["model"], out, tiny["check"], refuse=0.05)
    assert again["drop_db"] == report.check["drop_db"] and again["photos"] == 2
    assert again["int8_vs_fp32_psnr"] > 35
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["int8_check"])["drop_db"] == report.check["drop_db"]


def test_metadata_keeps_contract_and_records_recipe(int8):
    out, report = int8
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert (meta["scale"], meta["layout"], meta["value_range"], meta["source"]) == ("4", "NHWC", "0,1", "test")
    assert meta["precision"] == "int8"
    recipe = json.loads(meta["quantization"])
    assert recipe == report.recipe
    assert (recipe["photos"], recipe["crop"], recipe["method"], recipe["calibration_crops"]) == (4, 24, "percentile", 8)
    assert recipe["onnxruntime"] == ort.__version__ and isinstance(recipe["reduce_range"], bool)
    assert recipe["float_convs"] == report.float_convs and recipe["exclude"] == list(FAST.exclude)


def test_beyond_the_bound_is_refused(tiny):
    other = make_sr_model(tiny["root"] / "other.onnx", depth=4, kernel=3, metadata=SRGAN_META, seed=3,
                          value_range=(0.0, 0.5))
    with pytest.raises(SrganError) as err:
        check_against_fp32(tiny["model"], other, tiny["check"], refuse=0.05)
    assert "not accepted" in str(err.value) and "\n" not in str(err.value)


def test_badly_calibrated_model_is_refused_and_not_written(tiny, tmp_path):
    """Calibrated on flat grey pictures, every activation range is too narrow for real photos."""
    flat = _folder(tmp_path / "flat", 2, 64, seed=0, flat=True)
    out = tmp_path / "bad.onnx"
    recipe = Recipe(photos=2, crops=4, crop=16, method="minmax", exclude=(), tiers=0)
    with pytest.raises(SrganError, match="not accepted"):
        quantize_model(tiny["model"], out, flat, recipe, check_photos=tiny["check"], refuse=0.05)
    assert not out.exists()


def test_tiered_last_conv_keeps_the_function(tiny):
    model = onnx.load(str(tiny["model"]))
    crops = [np.random.default_rng(i).random((1, 12, 12, 3), dtype=np.float32) for i in range(3)]
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    last = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    tensor, added = quantize.tier_last_conv(model, last, crops, tiers=4)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for crop in crops:
        assert np.abs(before.run(None, {"lr": crop})[0] - after.run(None, {"lr": crop})[0]).max() < 1e-5
    assert tensor.endswith("_tiers") and len(added) == 2


def test_segment_bounds_follow_the_slope():
    flat = quantize.segment_bounds(-1.0, 3.0, 4, lambda y: np.ones_like(y))
    assert np.allclose(flat, [-1, 0, 1, 2, 3], atol=0.01)
    tanh = quantize.segment_bounds(-4.0, 4.0, 4, lambda y: 1 / np.cosh(y) ** 2)
    widths = np.diff(tanh)
    assert tanh[0] == -4.0 and tanh[-1] == 4.0 and (widths > 0).all()
    assert widths[1] < widths[0] / 2 and widths[2] < widths[3] / 2  # finer where tanh is steep


def test_exclusions_and_cpu_flags(tiny):
    model = onnx.load(str(tiny["model"]))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert quantize.resolve_convs(model, ("first", "conv:-1", "conv:1", "conv:1")) == [convs[0], convs[1], convs[-1]]
    with pytest.raises(SrganError, match="no such conv"):
        quantize.resolve_convs(model, ("nope",))
    assert quantize.cpu_has_vnni("flags : fpu avx2 avx512f avx512_vnni amx_int8")
    assert not quantize.cpu_has_vnni("flags : fpu sse4_2 avx2")
    with pytest.raises(SrganError, match="calibration method"):
        Recipe(method="kl")
