"""int8 quantization of a tiny Keras-free ONNX model: the graph runs quantized, stays within the bound, carries the
contract and the recipe, and a model beyond the bound is refused."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.evaluate import degrade
from srgan_cli.training.quantize import Recipe, check_against_fp32, quantize_model
from srgan_cli.training.quantize.graph import resolve_convs, segment_bounds, tier_last_conv
from srgan_cli.upscale.precision import cpu_has_vnni
from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model

# The tiny model's near-identity convs requantize 8-bit pictures onto a slightly different grid, which darkens them by
# ~0.4 level: harmless for int8-vs-fp32 closeness, but it adds to the model's own darkening and costs 0.5 dB against
# the HR photos. The checked recipe quantizes the last conv (tiered) only; test_quantized_graph_runs quantizes more.
FAST = Recipe(photos=4, crops=2, crop=24, exclude=("conv:0", "conv:1", "conv:2", "conv:3"), last_conv="tiers")


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


@pytest.mark.parametrize(("exclude", "last"), [(FAST.exclude, "tiers"), (("first",), "float")])
def test_quantized_graph_runs(tiny, tmp_path, exclude, last):
    out = tmp_path / "q.onnx"
    recipe = Recipe(photos=4, crops=2, crop=24, exclude=exclude, last_conv=last)
    report = quantize_model(tiny["model"], out, tiny["calib"], recipe)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    convs = [n.name for n in onnx.load(str(out)).graph.node if n.op_type == "Conv"]
    tiered = last == "tiers"  # then a float conv sums the tiers; else the last conv stays float
    assert len(report.float_convs) == len(exclude) + (not tiered) and len(convs) == 5 + tiered
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    lr = degrade(photo_array(128, 128, seed=10), 4)[None, 5:15, 3:17].astype(np.float32) / 255  # calibration-like
    reference = ort.InferenceSession(str(tiny["model"]), providers=["CPUExecutionProvider"])
    got, expected = (s.run(None, {"lr": lr})[0] for s in (session, reference))
    assert got.shape == expected.shape == (1, 40, 56, 3)
    # 2.5 levels (3 near-identity convs requantized in a row); without VNNI/AMX, ONNX Runtime's AVX2 kernel sums
    # pairs of uint8 x int8 products in saturating int16 and loses a little more
    # (0.0124 and 36.2 dB on an AVX2-only EPYC; `srgan upscale --precision int8` warns of it on such CPUs)
    vnni = cpu_has_vnni()
    assert np.abs(got - expected).mean() < (0.01 if vnni else 0.016)
    check = check_against_fp32(tiny["model"], out, tiny["check"], refuse=None)
    assert check["int8_vs_fp32_psnr"] > (40 if vnni else 34)


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
    recipe = Recipe(photos=2, crops=4, crop=16, method="minmax", exclude=(), last_conv="int8")
    with pytest.raises(SrganError, match="not accepted"):
        quantize_model(tiny["model"], out, flat, recipe, check_photos=tiny["check"], refuse=0.05)
    assert not out.exists()


def test_tiered_last_conv_keeps_the_function(tiny):
    model = onnx.load(str(tiny["model"]))
    crops = [np.random.default_rng(i).random((1, 12, 12, 3), dtype=np.float32) for i in range(3)]
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    last = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    tensor, added = tier_last_conv(model, last, crops, tiers=4)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for crop in crops:
        assert np.abs(before.run(None, {"lr": crop})[0] - after.run(None, {"lr": crop})[0]).max() < 1e-5
    assert tensor.endswith("_tiers") and len(added) == 2


def test_segment_bounds_follow_the_slope():
    flat = segment_bounds(-1.0, 3.0, 4, lambda y: np.ones_like(y))
    assert np.allclose(flat, [-1, 0, 1, 2, 3], atol=0.01)
    tanh = segment_bounds(-4.0, 4.0, 4, lambda y: 1 / np.cosh(y) ** 2)
    widths = np.diff(tanh)
    assert tanh[0] == -4.0 and tanh[-1] == 4.0 and (widths > 0).all()
    assert widths[1] < widths[0] / 2 and widths[2] < widths[3] / 2  # finer where tanh is steep


def test_exclusions_and_cpu_flags(tiny):
    model = onnx.load(str(tiny["model"]))
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}"
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert resolve_convs(model, ("first", "conv:-1", "conv:1", "conv:1")) == [convs[0], convs[1], convs[-1]]
    with pytest.raises(SrganError, match="no such conv"):
        resolve_convs(model, ("nope",))
    assert resolve_convs(model, ("conv:99",)) == []  # the defaults' indices past a small model's convs: skipped
    with pytest.raises(SrganError, match="'conv:99': no such conv"):
        resolve_convs(model, ("conv:99",), strict=True)  # asked for by hand (--float-conv): refused
    assert cpu_has_vnni("flags : fpu avx2 avx512f avx512_vnni amx_int8")
    assert not cpu_has_vnni("flags : fpu sse4_2 avx2")
    with pytest.raises(SrganError, match="calibration method"):
        Recipe(method="kl")
    with pytest.raises(SrganError, match="last conv"):
        Recipe(last_conv="fp16")


def _export(*args):
    from typer.testing import CliRunner

    from srgan_cli.cli import app

    return CliRunner().invoke(app, ["export", *map(str, args)])


@pytest.fixture(scope="module")
def deeper(tmp_path_factory):
    """Seven convs: the default recipe keeps five in float32 (the sensitive four and the last) and quantizes two."""
    root = tmp_path_factory.mktemp("export")
    return make_sr_model(root / "deeper.onnx", depth=6, kernel=3, metadata={**SRGAN_META, "source": "test"})


def test_export_int8_writes_beside_the_model_with_its_recipe_and_check(tiny, deeper):
    done = _export(deeper, "--int8", "--calibration", tiny["calib"], "--check-photos", tiny["check"],
                   "--max-drop", "5", "--last-conv", "float")
    assert done.exit_code == 0, done.output
    out = deeper.with_name("deeper_int8.onnx")
    assert f"wrote {out}: int8" in done.output and "on 2 photos (check; drop" in done.output
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["precision"] == "int8" and meta["scale"] == "4"
    recipe = json.loads(meta["quantization"])
    assert (recipe["method"], recipe["last_conv"], len(recipe["float_convs"])) == ("percentile", "float", 5)
    assert recipe["fp32_stream"] is True
    check = json.loads(meta["int8_check"])
    assert check["refuse_db"] == 5 and check["photos"] == 2 and check["drop_db"] <= 5


def test_export_int8_refuses_a_model_over_the_bound_and_writes_nothing(tiny, deeper, tmp_path):
    flat = _folder(tmp_path / "flat", 3, 64, seed=0, flat=True)
    out = tmp_path / "refused_int8.onnx"
    done = _export(deeper, "--int8", "--calibration", flat, "--check-photos", tiny["check"], "-o", out)
    assert done.exit_code == 1 and "not accepted" in done.output and "Traceback" not in done.output
    assert not out.exists() and list(tmp_path.iterdir()) == [flat]


@pytest.mark.parametrize(("extra", "message"), [
    ((), "--int8 needs --calibration DIR"),
    (("--calibration", "calib", "--fp16"), "choose one of --int8 and --fp16"),
    (("--calibration", "calib"), "none is left to check the int8 model on"),
    (("--calibration", "nowhere"), "--calibration nowhere: not a folder"),
    (("--calibration", "calib", "--reference", "missing.onnx"), "--reference missing.onnx: not an .onnx file"),
    (("--calibration", "calib", "--check-photos", "calib", "--calibration-degrade", "jpeg:500"),
     "bad --degrade spec part 'jpeg:500'"),
])
def test_export_int8_usage_errors_are_one_line(tiny, deeper, monkeypatch, extra, message):
    monkeypatch.chdir(tiny["root"])
    done = _export(deeper, "--int8", *extra, "-o", "never_int8.onnx")
    assert done.exit_code != 0 and message in done.output and "Traceback" not in done.output
    assert not (tiny["root"] / "never_int8.onnx").exists()


def test_export_int8_checks_a_student_against_the_model_it_stands_in_for(tiny, deeper):
    """--reference: the drop is measured against another fp32 model (a distilled student's teacher)."""
    done = _export(deeper, "--int8", "--calibration", tiny["calib"], "--check-photos", tiny["check"],
                   "--reference", tiny["model"], "--max-drop", "50", "-o", deeper.with_name("student_int8.onnx"),
                   "--stream", "int8", "--percentile", "99.999", "--tiers", "6")
    assert done.exit_code == 0, done.output
    meta = {p.key: p.value for p in onnx.load(str(deeper.with_name("student_int8.onnx"))).metadata_props}
    check = json.loads(meta["int8_check"])
    recipe = json.loads(meta["quantization"])
    assert (recipe["fp32_stream"], recipe["percentile"], recipe["tiers"]) == (False, 99.999, 6)
    teacher = check_against_fp32(tiny["model"], tiny["model"], tiny["check"], refuse=None)
    own = check_against_fp32(deeper, deeper, tiny["check"], refuse=None)
    assert check["reference"] == "tiny.onnx" and "(tiny.onnx)" in done.output
    assert check["fp32_psnr"] == teacher["fp32_psnr"] != own["fp32_psnr"]
    alone = _export(deeper, "--reference", tiny["model"], "-o", deeper.with_name("never.onnx"))
    assert alone.exit_code == 2 and "go with --int8" in alone.output


def test_export_int8_keeps_the_convs_asked_for_in_float(tiny, deeper):
    done = _export(deeper, "--int8", "--calibration", tiny["calib"], "--check-photos", tiny["check"],
                   "--max-drop", "50", "--float-conv", "first", "--float-conv", "conv:-2",
                   "-o", deeper.with_name("float_convs_int8.onnx"))
    assert done.exit_code == 0, done.output
    model = onnx.load(str(deeper.with_name("float_convs_int8.onnx")))
    recipe = json.loads({p.key: p.value for p in model.metadata_props}["quantization"])
    assert recipe["exclude"] == ["first", "conv:-2"] and len(recipe["float_convs"]) == 2
    float_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and not n.name.endswith("_tiers_sum")
                   and not n.input[1].endswith("_DequantizeLinear_Output")]  # weights read unquantized
    assert float_convs == recipe["float_convs"]
    bad = _export(deeper, "--int8", "--calibration", tiny["calib"], "--check-photos", tiny["check"],
                  "--float-conv", "conv:99", "-o", deeper.with_name("never_int8.onnx"))
    assert bad.exit_code == 1 and "'conv:99': no such conv" in bad.output and "Traceback" not in bad.output
    assert not deeper.with_name("never_int8.onnx").exists()
    alone = _export(deeper, "--float-conv", "first", "-o", deeper.with_name("never.onnx"))
    assert alone.exit_code == 2 and "go with --int8" in alone.output
    degrid = _export(deeper, "--int8", "--calibration", tiny["calib"], "--degrid", "1.5",
                     "-o", deeper.with_name("never_int8.onnx"))
    assert degrid.exit_code == 2 and "keeps that file's degrid metadata" in degrid.output
    passes = _export(deeper, "--int8", "--calibration", tiny["calib"], "--consistency", "6",
                     "-o", deeper.with_name("never_int8.onnx"))
    assert passes.exit_code == 2 and "keeps that file's consistency metadata" in passes.output


def test_calibration_takes_turns_between_clean_and_damaged_photos(tiny):
    """--calibration-degrade: a model made for damaged photos is calibrated on them too, every other photo."""
    from srgan_cli.training.quantize.calibrate import calibration_crops
    from srgan_cli.training.quantize.graph import open_session
    from srgan_cli.upscale.contract import read_contract

    contract = read_contract(open_session(onnx.load(str(tiny["model"]))))
    clean = calibration_crops(tiny["calib"], contract, FAST)
    mixed = calibration_crops(tiny["calib"], contract, Recipe(**{**FAST.__dict__, "damage": ("jpeg:20",)}))
    assert len(mixed) == len(clean) == 8  # 4 photos x 2 crops, at the same places
    same = [np.array_equal(a, b) for a, b in zip(clean, mixed, strict=True)]
    assert same == [True, True, False, False] * 2


def test_export_int8_records_the_damage_it_calibrated_on(tiny, deeper):
    done = _export(deeper, "--int8", "--calibration", tiny["calib"], "--check-photos", tiny["check"],
                   "--max-drop", "50", "--calibration-degrade", "jpeg:75", "--calibration-degrade", "noise:6,jpeg:75",
                   "-o", deeper.with_name("damaged_int8.onnx"))
    assert done.exit_code == 0, done.output
    meta = {p.key: p.value for p in onnx.load(str(deeper.with_name("damaged_int8.onnx"))).metadata_props}
    assert json.loads(meta["quantization"])["damage"] == ["jpeg:75", "noise:6,jpeg:75"]
    alone = _export(deeper, "--calibration-degrade", "jpeg:75", "-o", deeper.with_name("never.onnx"))
    assert alone.exit_code == 2 and "go with --int8" in alone.output


def _conv_prelu_conv():
    """NCHW input -> conv 4->4 -> PRelu (per-channel slopes) -> conv 4->3: the SRResNet block pattern."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name) for name, shape in
             (("w1", (4, 4, 3, 3)), ("b1", (4,)), ("a", (4, 1, 1)), ("w2", (3, 4, 3, 3)), ("b2", (3,)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["z"], name="c1", pads=[1] * 4),
             helper.make_node("PRelu", ["z", "a"], ["p"], name="act"),
             helper.make_node("Conv", ["p", "w2", "b2"], ["y"], name="c2", pads=[1] * 4)]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 9, 7])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_folding_prelu_into_its_convs_keeps_the_function():
    from srgan_cli.training.quantize.graph import fold_prelu

    model, x = _conv_prelu_conv(), np.random.default_rng(1).normal(size=(1, 4, 9, 7)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert fold_prelu(model, keep=["c2"]) == 0  # a conv kept in float32 is left alone
    assert fold_prelu(model, keep=[]) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "Conv"]
    onnx.checker.check_model(model, full_check=True)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert np.abs(before[0] - after[0]).max() < 1e-5
