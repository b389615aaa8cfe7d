"""Helpers of the training tests: the tiny model flags and `srgan train` run in process."""

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from srgan_cli.cli import app

runner = CliRunner()
TINY = ["--blocks", "1", "--channels", "8", "--hr-size", "24", "--batch-size", "2", "--sample-every", "0"]
REPO = Path(__file__).resolve().parents[2]


def train(*args):
    """`srgan train ARGS` in process; a traceback (an exception other than the CLI's exit) fails the test."""
    result = runner.invoke(app, ["train", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def weights(run):
    import keras

    g = keras.saving.load_model(Path(run) / "generator.keras", safe_mode=True)
    return [np.asarray(w) for w in g.weights]


def saved_step(run):
    """The step of a run's newest checkpoint (its state.json)."""
    found = sorted(Path(run).glob("checkpoint/**/state.json"))
    return json.loads(found[-1].read_text())["step"]


# the start of a subprocess script that trains under a mirrored strategy over two logical CPUs (a fresh process:
# logical devices must be set before TensorFlow starts); the script continues with `strategy`, `Trainer`, `data`...
MIRRORED_PRELUDE = """
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from srgan_cli.training import data, patches
from srgan_cli.training.averaging import WeightAverage
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.loop import make_strategy
from srgan_cli.training.trainer import Trainer
strategy = make_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
"""


def run_mirrored(body, *args, timeout=600):
    """Run MIRRORED_PRELUDE + `body` with ARGS in a fresh interpreter; its stdout must say MIRRORED OK."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", MIRRORED_PRELUDE + body, *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    assert "MIRRORED OK" in result.stdout, result.stderr[-3000:]

