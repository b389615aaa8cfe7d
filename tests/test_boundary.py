"""The package's boundary: the upscale and evaluation sides and the command line never load TensorFlow, Keras or
the training package, so `pip install .` (no TensorFlow) upscales and evaluates, and `srgan --help` is fast.

Checked twice: by importing every module in a fresh interpreter, and statically from each file's imports.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BOUNDARY = ("srgan_cli.upscale", "srgan_cli.evaluation", "srgan_cli.cli")
FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "srgan_cli.training")
NO_TENSORFLOW_DIRS = ("upscale", "evaluation")

# the command line builds --help from TrainConfig's defaults: that module is stdlib only, and checked to stay so
ALLOWED = ("srgan_cli.training", "srgan_cli.training.config")

REPORT = """
def forbidden_loaded():
    return sorted(m for m in sys.modules
                  if any(m == f or m.startswith(f + ".") for f in FORBIDDEN) and m not in ALLOWED)
"""


def run_python(code):
    """Run `code` in a fresh interpreter (nothing imported by this test session leaks in); its stdout as JSON."""
    prelude = f"import importlib, json, pkgutil, sys\nFORBIDDEN = {FORBIDDEN!r}\nALLOWED = {ALLOWED!r}\n{REPORT}\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_upscale_evaluation_and_cli_module_loads_no_tensorflow_and_no_training():
    result = run_python(f"""
imported = []
for package in {BOUNDARY!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({{"imported": imported, "forbidden": forbidden_loaded()}}))
""")
    for expected in ("srgan_cli.upscale.inference", "srgan_cli.upscale.formats", "srgan_cli.evaluation.evaluate",
                     "srgan_cli.evaluation.niqe", "srgan_cli.cli.upscale", "srgan_cli.cli.train"):
        assert expected in result["imported"]  # the walk really imported the modules
    assert result["forbidden"] == []


@pytest.mark.parametrize("command", ["upscale", "evaluate"])
def test_command_help_loads_no_tensorflow_and_no_training(command):
    result = run_python(f"""
from srgan_cli.cli import main
sys.argv = ["srgan", {command!r}, "--help"]
try:
    main()
except SystemExit as stop:
    code = stop.code
print(json.dumps({{"code": code, "forbidden": forbidden_loaded()}}))
""")
    assert result == {"code": 0, "forbidden": []}


def _imports(path):
    """Every module a file imports, at any depth of its code (`from a import b` counts as a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_upscale_and_evaluation_files_import_no_tensorflow_and_no_training():
    files = [path for folder in NO_TENSORFLOW_DIRS for path in sorted((ROOT / "srgan_cli" / folder).rglob("*.py"))]
    assert len(files) >= 10
    offending = {f"{path.relative_to(ROOT)}: {name}" for path in files for name in _imports(path)
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert offending == set()


def test_the_static_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from srgan_cli import training\n    import keras.layers\n")
    assert {"srgan_cli.training", "keras.layers"} <= _imports(bad)


def test_upscale_path_never_imports_tensorflow(model_path, rgb_file, tmp_path):
    code = ("import sys; from srgan_cli.cli import main; sys.argv=['srgan','upscale',%r,'--model',%r,'-o',%r,'-q'];"
            "\ntry: main()\nexcept SystemExit: pass\n"
            "bad=[m for m in ('tensorflow','keras','tf2onnx') if m in sys.modules]; print('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code % (str(rgb_file), str(model_path), str(tmp_path / "x.png"))],
                         capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert (tmp_path / "x.png").exists()


def test_help_answers(tmp_path):
    for args in (["--help"], ["upscale", "--help"], ["--version"]):
        result = subprocess.run([sys.executable, "-m", "srgan_cli", *args], capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip()
