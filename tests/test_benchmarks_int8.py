"""The int8 benchmarks run the very files given: an fp32 file as fp32 beside its int8 copy, an `_int8` one as int8."""

import os
import runpy
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.precision import store_speedup
from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_fp32_row_runs_the_fp32_file_when_an_int8_copy_is_beside_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmark imports its _common helper
    upscale_cmd = runpy.run_path(str(BENCHMARKS / "int8.py"))["upscale_cmd"]
    fp32 = make_sr_model(tmp_path / "m.onnx", metadata=SRGAN_META)
    beside = make_sr_model(tmp_path / "m_int8.onnx", metadata=SRGAN_META, seed=5)  # what --precision auto looks for
    store_speedup(fp32, beside, 1, 3.0, tmp_path / "srgan" / "precision.json")  # as if timed: auto would take it
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    pixels = photo_array(12, 16)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    for name, model in (("fp32", fp32), ("int8", beside)):
        subprocess.run(upscale_cmd(model, tmp_path / "in.png", tmp_path / f"{name}.png", 1), check=True, timeout=120,
                       env=env)
        expected = Upscaler(model, device="cpu", threads=1, precision=name).upscale(Image.fromarray(pixels))
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"{name}.png")), np.asarray(expected)), name


def test_peers_runs_an_int8_file_given_by_its_shipped_name(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    onnx_upscaler = runpy.run_path(str(BENCHMARKS / "peers.py"))["OnnxUpscaler"]
    int8 = make_sr_model(tmp_path / "m_int8.onnx", metadata=SRGAN_META)
    out = onnx_upscaler(int8, 1).upscale_array(photo_array(8, 8))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
