"""The training scripts: pretraining on an accelerator, and averaging or mixing saved generators."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.training.helpers import REPO

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.tf


def test_accelerator_pretrain_script_writes_weights_the_trainer_loads(photos, tmp_path):
    from srgan_cli.training.archs.srresnet import build_generator

    init = build_generator(1, 8)
    init.save_weights(tmp_path / "init.weights.h5")
    script = REPO / "scripts" / "pretrain_on_accelerator.py"
    cmd = [sys.executable, str(script), "--photos", str(photos), "--init", str(tmp_path / "init.weights.h5"),
           "--out", str(tmp_path / "out.weights.h5"), "--blocks", "1", "--channels", "8", "--hr-size", "24",
           "--batch-size", "2", "--patches", "8", "--workers", "1", "--steps", "7", "--log-every", "5", "--lr", "1e-3"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after 7 steps" in done.stdout  # --steps, not whole epochs of --log-every
    trained = build_generator(1, 8)
    trained.load_weights(tmp_path / "out.weights.h5")
    pairs = zip(init.trainable_weights, trained.trainable_weights, strict=True)
    assert all(not np.array_equal(a, b) for a, b in pairs)
    assert not list(tmp_path.glob("*.partial.*"))


def test_accelerator_pretrain_script_decays_the_rate_over_the_time_it_is_given(photos, tmp_path):
    from srgan_cli.training.archs.srresnet import build_generator

    build_generator(1, 8).save_weights(tmp_path / "init.weights.h5")
    cmd = [sys.executable, str(REPO / "scripts" / "pretrain_on_accelerator.py"), "--photos", str(photos), "--init",
           str(tmp_path / "init.weights.h5"), "--out", str(tmp_path / "out.weights.h5"), "--blocks", "1",
           "--channels", "8", "--hr-size", "24", "--batch-size", "2", "--patches", "8", "--workers", "2",
           "--steps", "10000000", "--minutes", "0.5", "--log-every", "5", "--lr", "1e-3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-2000:]
    rates = [float(line.split()[-1]) for line in done.stdout.splitlines() if line.startswith("learning rate")]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] < 3e-4, rates  # down the cosine, not at the step count's
    assert rates == sorted(rates, reverse=True)
    assert (tmp_path / "out.weights.h5").stat().st_size < 2 * (tmp_path / "init.weights.h5").stat().st_size


def test_average_weights_script_writes_the_mean_generator_and_its_config(tmp_path):
    from srgan_cli.training.archs.srresnet import build_generator
    from srgan_cli.training.config import TrainConfig

    TrainConfig(arch_params={"blocks": 1, "channels": 8}).save(tmp_path / "config.json")
    first = build_generator(1, 8)
    second = build_generator(1, 8)
    second.set_weights([w + 2.0 for w in first.get_weights()])
    for name, model in (("a", first), ("b", second)):
        model.save_weights(tmp_path / f"{name}.weights.h5")
    script = REPO / "scripts" / "average_weights.py"
    cmd = [sys.executable, str(script), str(tmp_path / "a.weights.h5"), str(tmp_path / "b.weights.h5"),
           "--config", str(tmp_path / "config.json"), "-o", str(tmp_path / "mean.weights.h5")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mean = build_generator(1, 8)
    mean.load_weights(tmp_path / "mean.weights.h5")
    for a, m in zip(first.get_weights(), mean.get_weights(), strict=False):
        np.testing.assert_allclose(m, a + 1.0, atol=1e-6)
    # srgan export finds the shape beside it
    assert TrainConfig.load(tmp_path / "mean.config.json").arch_params["channels"] == 8
    done = subprocess.run([*cmd, "--mix", "3", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mean.load_weights(tmp_path / "mean.weights.h5")
    for a, m in zip(first.get_weights(), mean.get_weights(), strict=False):
        np.testing.assert_allclose(m, a + 0.5, atol=1e-6)  # a quarter of the way: network interpolation
    assert subprocess.run([*cmd, "--mix", "1"], capture_output=True, text=True, timeout=300).returncode == 2


def test_distil_student_starts_as_the_teacher_and_learns_it_resumably(photos, tmp_path):
    """The ReLU student takes every teacher weight but the body's PReLU slopes: with those at 0 it is the teacher."""
    import json
    import runpy

    from srgan_cli.training.archs.srresnet import build_generator
    from srgan_cli.training.config import TrainConfig

    student_from_teacher = runpy.run_path(str(REPO / "scripts" / "distil_student.py"))["student_from_teacher"]

    teacher = build_generator(1, 8)
    rng = np.random.default_rng(0)
    teacher.set_weights([w + rng.normal(0, 0.05, w.shape).astype("float32") for w in teacher.get_weights()])
    teacher.save_weights(tmp_path / "t.weights.h5")  # slopes not 0: the student has something to learn
    prelus = [layer for layer in teacher.layers if isinstance(layer, keras.layers.PReLU)]
    for layer in prelus[1:]:  # the body's and upsamplers' slopes to 0: PReLU == ReLU there
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    student = build_generator(1, 8, activation="relu")
    student_from_teacher(teacher, student)
    lr = rng.random((1, 12, 12, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(student(lr)), np.asarray(teacher(lr)), atol=1e-6)

    TrainConfig(arch_params={"blocks": 1, "channels": 8}).save(tmp_path / "t.config.json")
    out = tmp_path / "student"
    cmd = [sys.executable, str(REPO / "scripts" / "distil_student.py"), "--teacher", str(tmp_path / "t"),
           "--data", str(photos), "--out", str(out), "--batch", "2", "--lr-size", "8", "--save-every", "2",
           "--lr", "1e-2", "--steps"]
    for steps in ("3", "5"):  # the second run resumes at step 3
        done = subprocess.run([*cmd, steps], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "KERAS_BACKEND": "tensorflow"})
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads((out / "state.json").read_text())["step"] == int(steps)
    assert "step 4 " in done.stdout and "step 2 " not in done.stdout
    trained = build_generator(1, 8, activation="relu")
    trained.load_weights(out / "student.weights.h5")
    assert all(not np.array_equal(a, b) for a, b in zip(student.trainable_weights, trained.trainable_weights,
                                                         strict=True))
    assert TrainConfig.load(out / "student.config.json").arch_params["activation"] == "relu"


def test_distil_student_damages_half_of_each_batch_for_a_realistic_teacher(photos):
    """A teacher trained on realistic damage is distilled on its own inputs too: half clean, half damaged, resumable."""
    import runpy

    from srgan_cli.evaluation.degradations import load_params

    script = runpy.run_path(str(REPO / "scripts" / "distil_student.py"))
    damage = load_params(None)

    def batch(start):
        return next(script["mixed_batches"](photos, damage, 4, 8, 4, 0, start))

    i, mixed = batch(3)
    clean = next(script["batches"](script["load_lr_photos"](photos, 4, 8), 2, 8, 0, 3))[1]
    assert i == 3 and mixed.shape == (4, 8, 8, 3) and mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed[:2], clean)
    assert mixed.min() >= 0 and mixed.max() <= 1 and not np.array_equal(mixed[2:], clean)
    np.testing.assert_array_equal(batch(3)[1], mixed)  # batch i depends only on (seed, i): a resume sees it again
    assert not np.array_equal(batch(4)[1][2:], mixed[2:])
