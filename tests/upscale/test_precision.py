"""`--precision`: which file runs (fp32, or the `_int8` / `_fp16` copy beside it), the `auto` rules (file present,
VNNI/AMX, the cached per-machine timing against the 2x bar, CUDA), clear fallbacks, and `--help` staying light."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import UsageError
from srgan_cli.upscale import models, precision
from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.precision import MIN_SPEEDUP, choose, cpu_int8_features, variant_path
from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE, INT8_CPU_TILE
from tests.conftest import photo_array

runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Timings go to a cache of the test's own, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def pair(tmp_path, model_path):
    """An fp32 model with an `_int8` copy beside it (the same graph: only the file choice is under test)."""
    fp32 = tmp_path / "tiny.onnx"
    fp32.write_bytes(model_path.read_bytes())
    variant_path(fp32, "int8").write_bytes(model_path.read_bytes())
    return fp32


def _vnni(monkeypatch, flags=("avx512_vnni",)):
    monkeypatch.setattr(precision, "cpu_int8_features", lambda cpuinfo=None: list(flags))


def _timed(monkeypatch, speedup):
    calls = []
    monkeypatch.setattr(precision, "time_speedup", lambda fp32, int8, threads: calls.append(threads) or speedup)
    return calls


def test_auto_keeps_fp32_without_an_int8_file(model_path):
    choice = choose("auto", model_path, "cpu", 2)
    assert (choice.precision, choice.path, choice.fallback) == ("fp32", model_path, False)
    assert "no tiny_int8.onnx beside tiny.onnx" in choice.reason


def test_auto_keeps_fp32_on_a_cpu_without_vnni(pair, monkeypatch):
    _vnni(monkeypatch, ())
    calls = _timed(monkeypatch, 3.0)
    choice = choose("auto", pair, "cpu", 2)
    assert choice.precision == "fp32" and "no VNNI/AMX" in choice.reason and calls == []  # decided without timing


def test_auto_times_once_per_machine_and_keeps_fp32_below_the_bar(pair, monkeypatch):
    _vnni(monkeypatch)
    calls = _timed(monkeypatch, 1.32)
    first = choose("auto", pair, "cpu", 2)
    assert first.precision == "fp32" and first.path == pair
    assert "1.32x fp32" in first.reason and f"below the {MIN_SPEEDUP:g}x needed" in first.reason
    again = choose("auto", pair, "cpu", 2)
    assert again == first and calls == [2]  # the second decision came from the cache
    choose("auto", pair, "cpu", 1)
    assert calls == [2, 1]  # another thread count is another timing
    cached = json.loads(precision.timing_cache().read_text())
    assert sorted(entry["threads"] for entry in cached.values()) == [1, 2]


def test_auto_takes_int8_at_or_above_the_bar_and_times_again_when_a_file_changes(pair, monkeypatch):
    _vnni(monkeypatch, ("amx_int8",))
    calls = _timed(monkeypatch, 2.4)
    choice = choose("auto", pair, "cpu", 2)
    assert (choice.precision, choice.path) == ("int8", variant_path(pair, "int8"))
    assert "2.40x" in choice.reason and "amx_int8" in choice.reason
    os.utime(variant_path(pair, "int8"), ns=(1, 1))  # another file now: timed again
    choose("auto", pair, "cpu", 2)
    assert len(calls) == 2


def test_auto_does_not_time_when_asked_not_to(pair, monkeypatch):
    _vnni(monkeypatch)
    calls = _timed(monkeypatch, 3.0)
    choice = choose("auto", pair, "cpu", 2, measure=False)
    assert choice.precision == "fp32" and "not timed" in choice.reason and calls == []


def test_auto_on_cuda_is_fp32_and_explicit_choices_are_honoured(pair, monkeypatch):
    _vnni(monkeypatch)
    _timed(monkeypatch, 3.0)
    assert choose("auto", pair, "cuda:0", 2).precision == "fp32"
    assert choose("int8", pair, "cpu", 2).path == variant_path(pair, "int8")
    assert choose("fp32", pair, "cpu", 2).path == pair
    missing = choose("fp16", pair, "cpu", 2)
    assert (missing.precision, missing.path, missing.fallback) == ("fp32", pair, True)
    assert "no tiny_fp16.onnx beside tiny.onnx" in missing.reason


def test_a_variant_file_given_as_the_model(pair):
    int8 = variant_path(pair, "int8")
    assert choose("auto", int8, "cpu", 2).precision == "int8"
    assert choose("int8", int8, "cpu", 2).path == int8
    with pytest.raises(UsageError, match="itself the int8 model"):
        choose("fp32", int8, "cpu", 2)
    with pytest.raises(UsageError, match="--precision int4"):
        choose("int4", pair, "cpu", 2)


def test_cpu_features_and_shipped_names_leave_variants_out(tmp_path, model_path, monkeypatch):
    assert cpu_int8_features("flags : fpu avx2 avx512_vnni amx_int8") == ["avx512_vnni", "amx_int8"]
    assert cpu_int8_features("flags : fpu sse4_2 avx2") == []
    for name in ("a_x4.onnx", "a_x4_int8.onnx", "a_x4_fp16.onnx"):
        (tmp_path / name).write_bytes(model_path.read_bytes())
    monkeypatch.setattr(models, "WEIGHTS_DIRS", (tmp_path,))
    assert models.shipped_models() == ["a_x4"]
    (tmp_path / "a_x4_int8.onnx").unlink()
    assert "no int8 copy of a_x4 is shipped" in choose("auto", tmp_path / "a_x4.onnx", "cpu", 2).reason


def test_upscaler_runs_the_chosen_file(pair, monkeypatch):
    _vnni(monkeypatch)
    _timed(monkeypatch, 2.5)
    upscaler = Upscaler(pair, device="cpu", precision="auto")
    assert upscaler.precision.path == variant_path(pair, "int8") and upscaler.scale == 4
    assert Upscaler(pair, device="cpu").precision.precision == "fp32"  # the API's default is the file itself


def test_int8_on_the_cpu_takes_larger_default_tiles_in_the_same_memory(pair, monkeypatch):
    _vnni(monkeypatch)
    _timed(monkeypatch, 2.5)
    assert Upscaler(pair, device="cpu", precision="int8").tile == INT8_CPU_TILE
    assert Upscaler(pair, device="cpu", precision="auto").tile == INT8_CPU_TILE
    assert Upscaler(pair, device="cpu").tile == DEFAULT_TILE
    assert Upscaler(pair, device="cpu", precision="int8", tile=96).tile == 96  # a tile given is kept
    assert Upscaler(pair, device="cpu", precision="int8", tile=0).tile == 0
    auto = {name: Upscaler(pair, device="cpu", precision=name, tile=None).tile for name in ("fp32", "int8")}
    assert 1.4 < (auto["int8"] + 2 * DEFAULT_PAD) / (auto["fp32"] + 2 * DEFAULT_PAD) < 1.8  # --tile auto: same memory


def test_cli_says_what_runs_and_falls_back_clearly(pair, tmp_path, monkeypatch):
    from PIL import Image

    _vnni(monkeypatch)
    _timed(monkeypatch, 1.3)
    Image.fromarray(photo_array(20, 24)).save(tmp_path / "in.png")
    args = ["upscale", str(tmp_path / "in.png"), "--model", str(pair), "--overwrite"]
    verbose = runner.invoke(app, [*args, "-v"])
    assert verbose.exit_code == 0, verbose.output
    assert "device: cpu, precision: fp32 (auto: int8 ran 1.30x fp32" in verbose.output
    fallback = runner.invoke(app, [*args, "--precision", "fp16"])
    assert fallback.exit_code == 0, fallback.output
    assert "warning: --precision fp16: no tiny_fp16.onnx beside tiny.onnx: running fp32" in fallback.output
    assert Image.open(tmp_path / "in_x4.png").size == (96, 80)
    bad = runner.invoke(app, [*args, "--precision", "int4"])
    assert bad.exit_code == 2 and "--precision int4: use auto, fp32, int8, fp16" in bad.output


def test_upscale_help_adds_no_import():
    code = ("import sys\nfrom srgan_cli.cli import main\nsys.argv = ['srgan', 'upscale', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('onnxruntime', 'onnx', 'srgan_cli.upscale.precision', 'srgan_cli.upscale.session')"
            " if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert "--precision" in done.stdout and done.stdout.strip().splitlines()[-1] == "[]"


def test_version_line_says_what_auto_runs_without_timing(tmp_path, model_path, monkeypatch):
    (tmp_path / "a_x4.onnx").write_bytes(model_path.read_bytes())
    (tmp_path / "default.txt").write_text("a_x4.onnx\n")
    monkeypatch.setattr(models, "WEIGHTS_DIRS", (tmp_path,))
    assert precision.version_line().startswith("precision auto: fp32 on this CPU for a_x4 (auto: no int8 copy")
    (tmp_path / "a_x4_int8.onnx").write_bytes(model_path.read_bytes())
    _vnni(monkeypatch)
    calls = _timed(monkeypatch, 2.5)
    assert "not timed on this machine yet" in precision.version_line() and calls == []
    choose("auto", tmp_path / "a_x4.onnx", "cpu", precision.cpu_count())
    assert precision.version_line().startswith("precision auto: int8 on this CPU for a_x4 (auto: int8 ran 2.50x")
