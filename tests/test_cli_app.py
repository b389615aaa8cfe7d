"""The `srgan` app itself (cli/app.py): help text printed as written, shell completion, `--version`, packaging."""

import importlib
from pathlib import Path

import onnxruntime
import pytest
import typer
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.upscale import models

ROOT = Path(__file__).parents[1]
runner = CliRunner()


def test_help_text_is_printed_as_written_not_as_rich_markup():
    result = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "[default: 100000]" in result.output


def test_shell_completion_is_offered():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "--install-completion" in result.output


def test_version_names_onnx_runtime_its_usable_providers_and_the_shipped_models(monkeypatch, model_path, tmp_path):
    (tmp_path / "tiny_x4.onnx").write_bytes(model_path.read_bytes())
    (tmp_path / "other_x2.onnx").write_bytes(model_path.read_bytes())
    (tmp_path / "default.txt").write_text("tiny_x4.onnx\n")
    monkeypatch.setattr(models, "WEIGHTS_DIRS", (tmp_path,))
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert "srgan 0.1.0" in result.output
    assert f"onnxruntime {onnxruntime.__version__}" in result.output and "CPUExecutionProvider" in result.output
    assert "tiny_x4 (default)" in result.output and "other_x2" in result.output


def test_the_model_option_lists_the_shipped_models():
    result = runner.invoke(app, ["upscale", "--help"], terminal_width=200)
    for name in models.shipped_models():
        assert name in result.output


def test_the_installed_package_does_not_carry_the_training_weights():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["srgan_cli.weights"]
    assert "*.onnx" in shipped and not any(pattern.endswith(".h5") for pattern in shipped)


def test_every_sub_package_is_installed():
    """A non-editable install carries only the listed packages: srgan_cli.training.archs was once left out."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "srgan_cli").rglob("__init__.py")}
    assert found - listed == set()


def test_a_lost_peer_ends_the_process_at_once_after_its_error_line(monkeypatch, capsys):
    """TensorFlow's collective pools are broken then: a normal shutdown printed a Pool.__del__ traceback (CI, once)."""
    from srgan_cli.errors import LostPeerError, SrganError

    cli_app = importlib.import_module("srgan_cli.cli.app")  # the module (the package exports the Typer app as `app`)

    ended = []

    def fake_exit(code):
        ended.append(code)
        raise SystemExit(code)

    def lose(error):
        raise error

    monkeypatch.setattr(cli_app.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        cli_app.run_or_exit(lose, LostPeerError("worker 0 of 2: lost contact with the other workers"))
    assert ended == [1] and "lost contact" in capsys.readouterr().err
    with pytest.raises(typer.Exit):  # any other domain error leaves through the interpreter's normal exit
        cli_app.run_or_exit(lose, SrganError("bad input"))
    assert ended == [1]
