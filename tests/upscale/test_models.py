"""Shipped models (models.py): the default model, models by name, and a clear exit when none is shipped."""

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.upscale import models

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def one_line_error(result):
    assert "Traceback" not in result.output
    return result.output


def test_no_default_model_yet_exits_2(monkeypatch, rgb_file):
    monkeypatch.setattr("srgan_cli.upscale.models.default_model_path", lambda: None)
    result = upscale(rgb_file)
    assert result.exit_code == 2 and "no default model" in result.output


def test_shipped_models_are_usable_by_name_and_a_wrong_name_lists_them(monkeypatch, model_path, rgb_file, tmp_path):
    shipped = tmp_path / "weights"
    shipped.mkdir()
    (shipped / "tiny_x4.onnx").write_bytes(model_path.read_bytes())
    monkeypatch.setattr("srgan_cli.upscale.models.WEIGHTS_DIRS", (shipped,))
    result = upscale(rgb_file, "--model", "tiny_x4", "-o", tmp_path / "big.png", "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "big.png").size == (120, 84)
    result = upscale(rgb_file, "--model", "tiny_x2", "-o", tmp_path / "other.png")
    assert result.exit_code == 1 and "usable by name: tiny_x4" in one_line_error(result)
    assert not (tmp_path / "other.png").exists()


def test_the_checkout_weights_folder_is_found():
    """The shipped default resolves from a checkout (weights/ beside srgan_cli/) as well as when installed."""
    checkout = Path(models.__file__).parents[2] / "weights"
    assert checkout in models.WEIGHTS_DIRS
    if (checkout / "default.txt").is_file():
        assert models.default_model_path() == checkout / (checkout / "default.txt").read_text().strip()
