"""What `srgan train` writes to the terminal: no TensorFlow chatter, log lines through the shared rich console, and
without a terminal one progress line per --log-every steps with ETA and lr, never a stale validation."""

import logging
import re
import subprocess
import sys

import pytest
from rich.logging import RichHandler

from srgan_cli.console import err_console
from tests.training.helpers import TINY, train

pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tf
CHATTER = re.compile(r"^[IWE]\d{4} |absl::InitializeLog|oneDNN|cuInit|cuda|rebuild TensorFlow", re.MULTILINE)


def test_tensorflow_start_up_chatter_stays_off_the_terminal(photos, tmp_path):
    cmd = [sys.executable, "-m", "srgan_cli", "train", "--data", str(photos), "--runs", str(tmp_path), "--name", "q",
           *TINY, "--steps", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not CHATTER.search(done.stderr), done.stderr
    assert "training on 3 photos" in done.stderr and "stopped at step 2" in done.stderr


def test_log_lines_go_through_the_shared_rich_console(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "l", *TINY, "--steps", "1")
    assert result.exit_code == 0, result.output
    handlers = [h for h in logging.getLogger("srgan").handlers if isinstance(h, RichHandler)]
    assert len(handlers) == 1 and handlers[0].console is err_console
    assert not logging.getLogger("srgan").propagate  # not twice, and never around the progress bar
    assert "training on 3 photos (1 too small, 1 unreadable skipped)" in result.stderr
    assert "warning: skipping unreadable" in result.stderr
    result = train("--data", photos, "--runs", tmp_path, "--name", "l2", *TINY, "--steps", "1", "-q")
    assert result.output.startswith("warning: skipping unreadable") and len(result.output.splitlines()) == 1


def progress_lines(output):
    return [line for line in output.splitlines() if line.startswith("step ")]


def test_without_a_terminal_a_progress_line_every_log_every_steps_with_eta_and_lr(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "p", *TINY, "--steps", "7", "--log-every", "3",
                   "--lr", "2e-4")
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr)
    assert [line.split()[1] for line in lines] == ["3/7", "6/7", "7/7"], result.stderr
    assert all(re.search(r"steps/s +ETA \d+:\d\d:\d\d .*g_loss [\d.e-]+ .*lr 0\.0002", line) for line in lines), lines
    rows = (tmp_path / "p" / "log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["3", "6", "7"]


def test_a_resumed_run_shows_no_validation_from_before_it_stopped(photos, tmp_path):
    common = ["--runs", tmp_path, "--name", "r", "--log-every", "1"]
    result = train(*common, "--data", photos, "--val", photos / "nested", *TINY, "--steps", "2", "--val-every", "2")
    assert result.exit_code == 0 and " val " in progress_lines(result.stderr)[-1], result.output
    result = train(*common, "--resume", "--steps", "4", "--val-every", "100")
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in progress_lines(result.stderr)] == ["3/4", "4/4"]
    assert not any(" val " in line for line in progress_lines(result.stderr)), result.stderr
