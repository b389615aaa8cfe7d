"""benchmarks/degrid.py times the same model with and without degrid (or consistency), at fp32 and at int8 when a
copy is beside it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("step", ["degrid", "consistency"])
def test_it_reports_both_precisions_side_by_side(tmp_path, step):
    model = make_sr_model(tmp_path / "m.onnx", metadata=SRGAN_META)
    make_sr_model(tmp_path / "m_int8.onnx", metadata=SRGAN_META, seed=5)
    Image.fromarray(photo_array(40, 48)).save(tmp_path / "in.png")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "degrid.py"), "--model", str(model), "--photo",
                           str(tmp_path / "in.png"), "--repeat", "1", "--step", step, "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    rows = json.loads(done.stdout)["rows"]
    assert [row["precision"] for row in rows] == ["fp32", "int8"]
    assert all(row[f"{step}_s"] > 0 and row[f"no_{step}_s"] > 0 for row in rows)
