"""The discriminator watch: a warning once per collapse of an adversarial run, never on a healthy one."""

import pytest

from srgan_cli.training import loop
from srgan_cli.training.watch import DiscriminatorWatch
from tests.training.helpers import TINY, train


def feed(w, losses, first_step=1):
    return [(step, line) for step, loss in enumerate(losses, first_step) if (line := w.update(step, loss))]


def test_a_healthy_discriminator_is_never_reported():
    assert feed(DiscriminatorWatch(window=5), [1.2, 0.8, 0.5, 0.3, 0.1, 0.05, 0.9] * 20) == []


def test_a_collapse_is_reported_once_when_the_window_mean_falls_under_the_floor():
    reported = feed(DiscriminatorWatch(window=4, floor=0.02), [0.5] * 4 + [0.004] * 30)
    assert [step for step, _ in reported] == [8]  # steps 5-8 are the first window under 0.02
    assert "step 8" in reported[0][1] and "--discriminator unet" in reported[0][1]


def test_one_lucky_batch_is_not_a_collapse():
    assert feed(DiscriminatorWatch(window=4, floor=0.02), [0.5, 0.5, 0.5, 0.001, 0.5, 0.5, 0.001] * 5) == []


def test_a_second_collapse_after_a_recovery_is_reported_again():
    losses = [0.001] * 10 + [0.5] * 10 + [0.001] * 10
    assert [step for step, _ in feed(DiscriminatorWatch(window=4, floor=0.02), losses)] == [4, 24]


def test_a_gan_run_logs_the_warning_after_the_warmup_only(photos, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    # any loss is a collapse: what is tested is where the loop asks
    monkeypatch.setattr(loop, "DiscriminatorWatch", lambda: DiscriminatorWatch(window=1, floor=1e9))
    result = train("--data", photos, "--runs", tmp_path, "--name", "g", *TINY, "--hr-size", "32", "--phase", "gan",
                   "--content-loss", "mse", "--steps", "3", "--d-warmup", "2")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "won outright" in line]
    assert len(warned) == 1 and "at step 3" in warned[0]
