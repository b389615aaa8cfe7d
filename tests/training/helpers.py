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
