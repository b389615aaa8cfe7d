"""The model contract (contract.py): what a model returns is checked, and every refusal is one line that says where
the bad value came from (the model's metadata or a flag)."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale.inference import Upscaler
from tests.conftest import photo_array
from tests.upscale.onnx_builders import make_odd_model

runner = CliRunner()
PYTHON_ERRORS = ("Traceback", "IndexError", "ValueError", "TypeError")


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def one_line(result):
    assert not any(word in result.output for word in PYTHON_ERRORS), result.output
    assert len([line for line in result.output.splitlines() if "error" in line]) == 1, result.output
    return result.output


@pytest.mark.parametrize("kind,words", [("nan", "NaN"), ("int", "int32")])
def test_a_model_returning_nan_or_integers_fails_the_file_in_one_line(tmp_path, rgb_file, kind, words):
    model = make_odd_model(tmp_path / f"{kind}.onnx", kind, metadata={"scale": 4})
    result = upscale(rgb_file, "--model", model, "-o", tmp_path / "out.png")
    assert result.exit_code == 1 and words in one_line(result)
    assert not (tmp_path / "out.png").exists()


def test_a_rank_2_output_is_refused_in_one_line(tmp_path, rgb_file):
    model = make_odd_model(tmp_path / "flat.onnx", "rank2", metadata={"scale": 4})
    result = upscale(rgb_file, "--model", model, "-o", tmp_path / "out.png")
    assert result.exit_code == 1 and "rank 2" in one_line(result)


@pytest.mark.parametrize("scale", ["-4", "0", "4.5", "four"])
def test_a_bad_scale_in_the_metadata_is_refused_in_one_line_naming_the_metadata(tmp_path, rgb_file, scale):
    model = make_odd_model(tmp_path / "odd.onnx", metadata={"scale": scale})
    result = upscale(rgb_file, "--model", model)
    assert result.exit_code == 1 and "metadata" in one_line(result) and repr(scale) in result.output


@pytest.mark.parametrize("key,value", [("layout", "NCWH"), ("value_range", "0,2")])
def test_bad_metadata_is_blamed_on_the_model_not_on_a_flag(tmp_path, rgb_file, key, value):
    model = make_odd_model(tmp_path / "odd.onnx", metadata={"scale": 4, key: value})
    result = upscale(rgb_file, "--model", model)
    output = one_line(result)
    assert result.exit_code == 1 and "metadata" in output and value in output
    assert "--layout" not in output.split(value)[0] and "--range" not in output.split(value)[0]


@pytest.mark.parametrize("flag,value", [("--layout", "NCWH"), ("--range", "0,2")])
def test_bad_flags_are_usage_errors_naming_the_flag(model_path, rgb_file, flag, value):
    result = upscale(rgb_file, "--model", model_path, flag, value)
    assert result.exit_code == 2 and f"{flag} {value}" in one_line(result)


def test_an_identity_model_is_not_a_super_resolution_model(tmp_path, rgb_file):
    model = make_odd_model(tmp_path / "same.onnx", scale=1)
    result = upscale(rgb_file, "--model", model)
    assert result.exit_code == 1 and "not a super-resolution model" in one_line(result)
    model = make_odd_model(tmp_path / "labelled.onnx", scale=1, metadata={"scale": 1})
    assert upscale(rgb_file, "--model", model).exit_code == 1
    assert upscale(rgb_file, "--model", tmp_path / "same.onnx", "--scale", "1").exit_code == 2
    with pytest.raises(UsageError):
        Upscaler(tmp_path / "same.onnx", scale=1)


def test_a_scale_the_model_does_not_have_is_one_line(tmp_path, rgb_file):
    model = make_odd_model(tmp_path / "x2.onnx", scale=2, metadata={"scale": 4})
    result = upscale(rgb_file, "--model", model, "-o", tmp_path / "o.png")
    assert result.exit_code == 1 and "metadata" in one_line(result)


def test_a_valid_odd_model_still_works(tmp_path):
    upscaler = Upscaler(make_odd_model(tmp_path / "x3.onnx", scale=3), device="cpu")
    out = upscaler.upscale(Image.fromarray(photo_array(5, 7)))
    assert out.size == (21, 15) and upscaler.scale == 3


def test_the_nan_check_is_an_srgan_error_in_the_api(tmp_path):
    upscaler = Upscaler(make_odd_model(tmp_path / "nan.onnx", "nan"), device="cpu", scale=4)
    with pytest.raises(SrganError, match="NaN"):
        upscaler.upscale_array(np.zeros((4, 4, 3), np.float32))
