"""Run folders and validation sets at their edges: one training process per run folder (RunFolder.lock), a log.csv
without repeated steps after a resume from an older checkpoint (RunFolder.truncate_log), and validation images that
cannot be scored skipped like training photos."""

import csv
import os
import shutil

import pytest

from srgan_cli.errors import SrganError
from srgan_cli.training.runfolder import LOCK_FILE, RunFolder, step_folder
from tests.training.helpers import TINY, train


def logged_steps(run):
    with (run / "log.csv").open(newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_a_held_run_folder_refuses_a_second_holder_and_is_free_again_after(tmp_path):
    run = RunFolder(tmp_path / "r")
    with run.lock():
        assert (tmp_path / "r" / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(SrganError, match=rf"in use by another srgan train \(pid {os.getpid()}\)"), \
                RunFolder(tmp_path / "r").lock():
            pass
    with RunFolder(tmp_path / "r").lock():
        pass


def test_a_lock_on_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    with RunFolder(tmp_path / "runs" / "new").lock():
        assert (tmp_path / "runs" / "new").is_dir()
    assert not (tmp_path / "runs").exists()


def test_train_refuses_a_run_folder_another_process_trains_in(photos, tmp_path):
    with RunFolder(tmp_path / "busy").lock():
        result = train("--data", photos, "--runs", tmp_path, "--name", "busy", *TINY, "--steps", "2")
    assert result.exit_code == 1 and "in use by another srgan train" in result.output
    assert not (tmp_path / "busy" / "checkpoint").exists() and not (tmp_path / "busy" / "log.csv").exists()


def test_a_resume_from_an_older_checkpoint_does_not_log_steps_twice(photos, tmp_path):
    common = ["--runs", tmp_path, "--name", "r", "-q", "--log-every", "1"]
    first = train("--data", photos, *common, *TINY, "--steps", "4", "--checkpoint-every", "2")
    assert first.exit_code == 0, first.output
    shutil.rmtree(step_folder(tmp_path / "r" / "checkpoint", 4))  # as if killed between the log and a checkpoint
    assert logged_steps(tmp_path / "r")[-1] == 4
    assert train(*common, "--steps", "5", "--resume").exit_code == 0
    steps = [s for s in logged_steps(tmp_path / "r") if s > 0]
    assert steps == sorted(set(steps)) and steps[-1] == 5


def test_validation_skips_what_it_cannot_score_like_the_training_photos(tmp_path, caplog):
    from PIL import Image

    from srgan_cli.training.validation import load_validation
    from tests.conftest import photo_array

    Image.fromarray(photo_array(64, 64)).save(tmp_path / "good.png")
    Image.fromarray(photo_array(16, 16)).save(tmp_path / "tiny.png")
    (tmp_path / "fake.png").write_text("not an image")
    pairs = load_validation(tmp_path)
    assert len(pairs) == 1 and pairs[0][1].shape == (64, 64, 3)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "fake.png" in warned and "tiny.png" in warned
    (tmp_path / "good.png").unlink()
    with pytest.raises(SrganError, match="no validation images that can be scored"):
        load_validation(tmp_path)
