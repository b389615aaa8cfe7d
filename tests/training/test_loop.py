"""The training loop end to end through `srgan train`: resume, signals, NaN and blown-up weights, --init refusals,
kept checkpoints, validation and what is logged."""

import json
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.helpers import TINY, saved_step, train, weights

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from srgan_cli.training.archs.srresnet import build_generator  # noqa: E402

pytestmark = pytest.mark.tf
PROBE = np.random.default_rng(1).random((1, 12, 12, 3), dtype=np.float32)


def test_resumed_run_equals_uninterrupted_run(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, *TINY, "--checkpoint-every", "2", "--lr", "1e-3", "-q"]
    assert train(*common, "--name", "straight", "--steps", "6").exit_code == 0
    assert train(*common, "--name", "split", "--steps", "3").exit_code == 0
    result = train("--runs", tmp_path, "--name", "split", "--steps", "6", "--resume", "-q")
    assert result.exit_code == 0, result.output
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split"), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert saved_step(tmp_path / "split") == 6
    assert train("--runs", tmp_path, "--name", "split", "--resume", "-q").exit_code == 0  # keeps the run's 6 steps
    assert saved_step(tmp_path / "split") == 6
    resumed = ["--runs", tmp_path, "--name", "split", "--resume", "--lr", "5e-4", "--lr-decay-factor", "0.5", "-q"]
    assert train(*resumed, "--steps", "8", "--lr-decay-every", "1").exit_code == 0
    saved = json.loads((tmp_path / "split" / "config.json").read_text())
    assert (saved["steps"], saved["lr"], saved["arch_params"]["blocks"], saved["lr_decay_from"]) == (8, 5e-4, 1, 6)
    last_row = (tmp_path / "split" / "log.csv").read_text().splitlines()[-1]
    assert last_row.startswith("8,0.00025,")  # halved once: the new decay counts from the resume step, 6


def test_resume_does_not_need_the_init_file_any_more(photos, tmp_path):
    init = tmp_path / "start.weights.h5"
    build_generator(1, 8).save_weights(init)
    common = ["--runs", tmp_path, "--name", "f", "-q"]
    assert train(*common, "--data", photos, *TINY, "--steps", "1", "--init", init).exit_code == 0
    init.unlink()  # the run continues from its checkpoint, wherever it started
    result = train(*common, "--resume", "--steps", "2")
    assert result.exit_code == 0, result.output
    assert saved_step(tmp_path / "f") == 2


def test_existing_run_needs_resume_and_missing_data_is_an_error(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, "--name", "r", *TINY, "--steps", "1", "-q"]
    assert train(*common).exit_code == 0
    result = train(*common)
    assert result.exit_code == 1 and "--resume" in result.output
    assert train("--data", tmp_path / "nowhere", "--runs", tmp_path, "--name", "x", "-q").exit_code == 1
    result = train("--data", photos, "--runs", tmp_path, "--name", "l", "--phase", "gan", "--lattice-weight", "1",
                   "--hr-size", "24", "-q")
    assert result.exit_code == 2 and "multiple of 32" in result.output and not (tmp_path / "l").exists()


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_checkpoint_exit_with_their_code_and_resume_continues(photos, tmp_path, stop, code):
    cmd = [sys.executable, "-m", "srgan_cli", "train", "--data", str(photos), "--runs", str(tmp_path), "--name", "s",
           *TINY, "--steps", "100000", "--checkpoint-every", "1000", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "s" / "log.csv"
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err  # saved, and the scheduler sees the stop
    step = saved_step(tmp_path / "s")
    assert step >= 50  # logged at least once, and checkpointed where it stopped (not at a 1000-step interval)
    result = train("--runs", tmp_path, "--name", "s", "--steps", step + 2, "--resume", "-q")
    assert result.exit_code == 0, result.output
    assert saved_step(tmp_path / "s") == step + 2


def named_checkpoint(output, run):
    """The checkpoint a stop message sends the user back to: it must exist and hold finite weights that give a
    finite output."""
    found = re.search(r"newest good checkpoint is step (\d+) \((\S+)\)", " ".join(output.split()))
    assert found, output
    folder = Path(found.group(2))
    assert folder.is_dir() and saved_step(run) == int(found.group(1)) == json.loads(
        (folder / "state.json").read_text())["step"]
    assert_healthy(folder / "generator.weights.h5")
    return int(found.group(1))


def assert_healthy(weights_file):
    generator = build_generator(1, 8)
    generator.load_weights(weights_file)
    assert all(np.isfinite(w).all() for w in generator.get_weights()), weights_file
    assert np.isfinite(np.asarray(generator(PROBE, training=False))).all(), f"{weights_file} gives NaN"


def test_nan_loss_stops_with_a_clear_message(photos, tmp_path, monkeypatch):
    from srgan_cli.training.trainer import Trainer

    real_step = Trainer.train_step
    calls = {"n": 0}

    def poisoned(self, lr, hr, generator=True):
        calls["n"] += 1
        out = real_step(self, lr, hr, generator)
        return {k: float("nan") for k in out} if calls["n"] >= 3 else out

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    result = train("--data", photos, "--runs", tmp_path, "--name", "n", *TINY, "--steps", "10",
                   "--checkpoint-every", "2", "-q")
    assert result.exit_code == 1 and "nan at step 3" in result.output.lower()
    assert named_checkpoint(result.output, tmp_path / "n") == 2


def test_weights_that_give_nan_are_never_checkpointed_and_resume_goes_back(photos, tmp_path, monkeypatch):
    from srgan_cli.training.trainer import Trainer

    real_step = Trainer.train_step

    def blows_up(self, lr, hr, generator=True):
        out = real_step(self, lr, hr, generator)
        if self.g_optimizer.iterations.numpy() == 4:  # the loss is still finite: only the weights show it
            self.generator.set_weights([w * 1e30 for w in self.generator.get_weights()])
        return out

    monkeypatch.setattr(Trainer, "train_step", blows_up)
    common = ["--data", photos, "--runs", tmp_path, "--name", "p", *TINY, "--checkpoint-every", "1", "-q"]
    result = train(*common, "--steps", "10")
    assert result.exit_code == 1 and "after step 4" in result.output, result.output
    assert named_checkpoint(result.output, tmp_path / "p") == 3
    for kept in (tmp_path / "p").glob("checkpoint/**/generator.weights.h5"):
        assert_healthy(kept)
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert train("--runs", tmp_path, "--name", "p", "--resume", "--steps", "5", "-q").exit_code == 0
    assert saved_step(tmp_path / "p") == 5


def test_a_learning_rate_that_blows_up_the_weights_leaves_only_good_checkpoints(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "hot", *TINY, "--lr", "1e6", "--steps", "20",
                   "--checkpoint-every", "1", "-q")
    assert result.exit_code == 1 and "step none" not in result.output
    for kept in (tmp_path / "hot").glob("checkpoint/**/generator.weights.h5"):
        assert_healthy(kept)
    if "newest good checkpoint" in result.output:
        named_checkpoint(result.output, tmp_path / "hot")
    else:
        assert "no checkpoint was saved yet" in " ".join(result.output.split())


def test_keep_checkpoints_keeps_the_newest_k(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, *TINY, "--checkpoint-every", "1", "-q"]
    assert train(*common, "--name", "k", "--steps", "5", "--keep-checkpoints", "2").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "k" / "checkpoint").iterdir()) == ["step_0000004", "step_0000005"]
    assert json.loads((tmp_path / "k" / "config.json").read_text())["keep_checkpoints"] == 2
    result = train(*common, "--name", "k0", "--steps", "5", "--keep-checkpoints", "0")
    assert result.exit_code == 2 and "--keep-checkpoints" in result.output and not (tmp_path / "k0").exists()


@pytest.mark.parametrize("case", ["garbage.weights.h5", "garbage.keras", "other_arch.weights.h5",
                                  "other_arch.keras"])
def test_init_that_is_not_generator_weights_of_this_run_is_one_line(photos, tmp_path, case):
    init = tmp_path / case
    if case.startswith("garbage"):
        init.write_bytes(b"\x00\x01 definitely not a model " * 40)
    elif case.endswith(".keras"):
        build_generator(2, 16).save(init)
    else:
        build_generator(2, 16).save_weights(init)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train("--data", photos, "--runs", tmp_path, "--name", "i", *TINY, "--steps", "1", "-q",
                       "--init", init)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"error: --init {init}:"), lines
    expected = {"garbage.weights.h5": "not HDF5", "garbage.keras": "not a zip", "other_arch": "does not fit"}
    assert next(v for k, v in expected.items() if case.startswith(k)) in lines[0]
    assert not [w for w in caught if "keras" in str(w.filename)], [str(w.message)[:80] for w in caught]
    assert not (tmp_path / "i").exists()


def test_validation_keeps_best_generator_and_samples(photos, tmp_path):
    result = train("--data", photos, "--val", photos / "nested", "--runs", tmp_path, "--name", "v",
                   "--blocks", "1", "--channels", "8", "--hr-size", "24", "--batch-size", "2",
                   "--steps", "4", "--val-every", "2", "--sample-every", "2", "-q")
    assert result.exit_code == 0, result.output
    run = tmp_path / "v"
    assert (run / "best_generator.keras").exists() and (run / "best_generator.weights.h5").exists()
    assert not list(run.glob("*partial*"))  # generators are saved through temporary names, then renamed
    assert len(list((run / "samples").glob("*.png"))) == 2
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and "val_psnr" in rows[0]
    assert Image.open(next((run / "samples").glob("*.png"))).size == (72, 24)


def tensorboard(run):
    """{tag: [(step, kind)]} of a run's TensorBoard events."""
    found = {}
    for events in sorted((run / "tensorboard").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                kind = value.metadata.plugin_data.plugin_name
                found.setdefault(value.tag, []).append((event.step, kind))
    return found


def test_every_validation_an_early_one_and_the_samples_are_logged(photos, tmp_path):
    result = train("--data", photos, "--val", photos / "nested", "--runs", tmp_path, "--name", "e", *TINY,
                   "--steps", "8", "--val-every", "3", "--log-every", "4", "--sample-every", "4", "-q")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in (tmp_path / "e" / "log.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    psnr = header.index("val_psnr")
    assert [int(r[0]) for r in rows] == [3, 4, 5, 6, 8]  # every log_every step, every validation, the last step
    assert [int(r[0]) for r in rows if r[psnr]] == [3, 5, 6]  # step 5: the early validation, 5 steps in
    events = tensorboard(tmp_path / "e")
    assert [step for step, _ in events["val_psnr"]] == [3, 5, 6]
    assert [(step, kind) for step, kind in events["sample"]] == [(4, "images"), (8, "images")]


def test_extra_loss_terms_get_their_own_columns(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "g", *TINY, "--hr-size", "32", "--phase", "gan",
                   "--content-loss", "mse", "--steps", "2", "--log-every", "1", "--lattice-weight", "1",
                   "--lowfreq-weight", "2", "--overshoot-weight", "3", "--colour-weight", "4", "-q")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in (tmp_path / "g" / "log.csv").read_text().splitlines()]
    columns = ["content_loss", "adv_loss", "d_loss", "lattice_term", "lowfreq_term", "overshoot_term", "colour_term"]
    assert set(columns) <= set(rows[0]) and "pixel_term" not in rows[0]
    for column in columns:
        assert np.isfinite(float(rows[-1][rows[0].index(column)])), column
