"""SIGTERM and Ctrl-C stop `srgan upscale` cleanly: finished files complete, no partial file, the summary, 143/130."""

import os
import re
import signal
import time

import pytest
from PIL import Image

from tests.conftest import photo_array
from tests.upscale.slow_cli import start_slow_upscale


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_or_drops_the_current_file_prints_the_summary_and_exits(model_path, tmp_path, sig, code):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(30):
        Image.fromarray(photo_array(16, 16, seed=i)).save(src / f"{i:02}.png")
    run = start_slow_upscale(1.0, src, "-o", out, "--model", model_path, "--device", "cpu", "--threads", "1")
    try:
        deadline = time.monotonic() + 60
        while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
            assert time.monotonic() < deadline and run.poll() is None, "no output appeared"
            time.sleep(0.05)
        run.send_signal(sig)
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    done = int(re.search(r"(\d+) done, 0 skipped, 0 failed", stderr).group(1))
    written = sorted(out.iterdir())
    assert 1 <= done == len(written) < 30, stderr
    assert all(p.suffix == ".png" and Image.open(p).size == (64, 64) for p in written)  # no .part, nothing partial


def test_interrupts_while_a_write_finishes_still_count_that_file(tmp_path, monkeypatch):
    from srgan_cli.upscale import batch

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(4):
        Image.fromarray(photo_array(8, 8, seed=i)).save(src / f"{i}.png")
    real_write = batch._write

    def write_interrupted(photo, *args):  # the signal lands while the main thread waits for this write
        if not signal_sent:
            for _ in range(2):  # Ctrl-C twice; by now the main thread waits for this write
                time.sleep(0.3)
                signal_sent.append(os.kill(os.getpid(), signal.SIGINT))
            time.sleep(0.3)
        return real_write(photo, *args)

    signal_sent: list = []
    monkeypatch.setattr(batch, "_write", write_interrupted)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    outcomes: list = []
    try:
        options = batch.Options(out=out)
        jobs, _ = batch.collect_jobs([src], options)
        with pytest.raises(KeyboardInterrupt):
            batch.run_batch(jobs, lambda photo, on_window=None: photo, options, outcomes.append)
            time.sleep(5)  # the interrupt may only surface after the last file
    finally:
        signal.signal(signal.SIGINT, previous)
    written = sorted(p.name for p in out.iterdir())
    reported = sorted(o.job.target.name for o in outcomes if o.status == "done")
    assert written and reported == written  # before the fix the write being waited for was left out of the report
