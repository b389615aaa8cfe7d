"""benchmarks/vs_tensorflow.py runs on a tiny generator: the registry refactor once broke its export call."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.tf


def test_vs_tensorflow_benchmark_exports_and_compares(tmp_path):
    pytest.importorskip("tensorflow")
    from srgan_cli.training import archs
    from srgan_cli.training.config import TrainConfig

    config = TrainConfig(arch_params={"blocks": 1, "channels": 8})
    archs.build_generator(config.arch, config.arch_params).save_weights(tmp_path / "tiny.weights.h5")
    config.save(tmp_path / "tiny.config.json")
    done = subprocess.run([sys.executable, "vs_tensorflow.py", "--weights", str(tmp_path / "tiny.weights.h5"),
                           "--crop", "16", "--repeat", "1", "--json"], cwd=BENCHMARKS, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["max_abs_diff"] < 1e-4 and len(result["rows"]) == 3


def test_train_precision_benchmark_times_both_policies(tmp_path):
    pytest.importorskip("tensorflow")
    done = subprocess.run([sys.executable, "train_precision.py", "--blocks", "1", "--channels", "8", "--hr-size", "32",
                           "--batch-size", "2", "--steps", "1", "--repeat", "1", "--json"], cwd=BENCHMARKS,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert [row["what"].split(",")[1].split()[0] for row in result["rows"]] == ["float32", "mixed_bfloat16"] * 2
    assert result["pretrain_bf16_speedup"] > 0 and result["gan_bf16_speedup"] > 0
