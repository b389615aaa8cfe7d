"""ONNX Runtime sessions (session.py): device requests, refused models, and the contract of foreign models."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from tests.conftest import SRGAN_META
from tests.tiny_models import make_sr_model

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def one_line_error(result):
    assert "Traceback" not in result.output
    return result.output


def test_cuda_request_without_cuda_fails_clearly(model_path, rgb_file):
    result = upscale(rgb_file, "--model", model_path, "--device", "cuda")
    assert result.exit_code == 1 and "CUDA is not usable" in one_line_error(result)
    assert not rgb_file.with_name("photo_x4.png").exists()


def test_not_an_onnx_file(tmp_path, rgb_file):
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    result = upscale(rgb_file, "--model", fake)
    assert result.exit_code == 1 and "not a usable ONNX model" in one_line_error(result)


def test_wrong_channel_count_is_refused(tmp_path, rgb_file):
    model = make_sr_model(tmp_path / "four.onnx", channels=4, metadata=SRGAN_META)
    result = upscale(rgb_file, "--model", model)
    assert result.exit_code == 1 and "4 channels" in result.output


def test_foreign_model_without_metadata_is_probed_or_configured(tmp_path, rgb_file):
    foreign = make_sr_model(tmp_path / "nchw255.onnx", scale=2, layout="NCHW", value_range=(0.0, 255.0))
    result = upscale(rgb_file, "--model", foreign, "--layout", "NCHW", "--range", "0,255", "-o", tmp_path / "f.png")
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "f.png"), dtype=float)
    assert out.shape == (42, 60, 3)  # scale 2 found by probing
    assert abs(out.mean() - np.asarray(Image.open(rgb_file), dtype=float).mean()) < 20


def test_a_model_with_a_non_integer_scale_in_its_metadata_is_refused_in_one_line(tmp_path, rgb_file):
    model = make_sr_model(tmp_path / "odd.onnx", metadata={"scale": "four"})
    result = upscale(rgb_file, "--model", model)
    assert result.exit_code == 1 and "not an integer" in one_line_error(result)
