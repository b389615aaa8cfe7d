"""The generator's weight average (EMA): its arithmetic, and a run that keeps one saving and resuming it."""

import numpy as np
import pytest

from tests.training.helpers import TINY, train, weights

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.tf


def test_weight_average_moves_toward_the_weights_and_lends_them_only_inside_the_block():
    from srgan_cli.training.archs.srresnet import build_generator
    from srgan_cli.training.averaging import WeightAverage

    generator = build_generator(1, 8)
    start = generator.get_weights()
    average = WeightAverage(generator, 0.75)
    generator.set_weights([w + 4.0 for w in start])
    average.update(generator)
    with average.applied(generator) as held:
        for w, a in zip(start, held.get_weights(), strict=False):
            np.testing.assert_allclose(a, w + 1.0, atol=1e-6)  # a quarter of the way
    for w, own in zip(start, generator.get_weights(), strict=False):
        np.testing.assert_allclose(own, w + 4.0, atol=1e-6)


def test_ema_run_saves_the_average_and_resumes_it(photos, tmp_path):
    common = ["--data", photos, "--runs", tmp_path, *TINY, "--checkpoint-every", "2", "--lr", "1e-3", "-q"]
    assert train(*common, "--name", "straight", "--steps", "6", "--ema", "0.5").exit_code == 0
    assert train(*common, "--name", "split", "--steps", "3", "--ema", "0.5").exit_code == 0
    assert train("--runs", tmp_path, "--name", "split", "--steps", "6", "--resume", "-q").exit_code == 0
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split"), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)
    raw = keras.saving.load_model(tmp_path / "straight" / "generator.keras", safe_mode=True)
    raw.load_weights(tmp_path / "straight" / "checkpoint" / "step_0000006" / "generator.weights.h5")
    pairs = zip(weights(tmp_path / "straight"), raw.weights, strict=True)
    moved = [not np.allclose(a, np.asarray(r)) for a, r in pairs]
    assert any(moved)  # generator.keras is the average, not the last step's weights


def test_resume_with_a_mismatched_saved_average_is_a_one_line_error(photos, tmp_path):
    common = ["--runs", tmp_path, "--name", "r", "-q"]
    first = train("--data", photos, *common, *TINY, "--steps", "2", "--checkpoint-every", "2", "--ema", "0.5")
    assert first.exit_code == 0
    np.savez(next((tmp_path / "r" / "checkpoint").glob("step_*/ema.npz")), np.zeros(3, np.float32))
    result = train(*common, "--steps", "4", "--resume")  # fails the test on a traceback
    assert result.exit_code == 1 and "ema.npz" in result.output, result.output


def test_resume_sets_aside_a_checkpoint_whose_average_is_truncated_and_takes_the_one_before(photos, tmp_path):
    common = ["--runs", tmp_path, "--name", "r", "-q"]
    first = train("--data", photos, *common, *TINY, "--steps", "2", "--checkpoint-every", "1", "--ema", "0.5")
    assert first.exit_code == 0
    newest = tmp_path / "r" / "checkpoint" / "step_0000002" / "ema.npz"
    newest.write_bytes(newest.read_bytes()[:100])
    result = train(*common, "--steps", "4", "--resume")  # fails the test on a traceback
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "r" / "checkpoint").glob("step_0000002*.bad"))
