"""The new GAN options off the single-device TensorFlow path: a mirrored strategy, and the JAX accelerator script."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_models import make_sr_model
from tests.training.helpers import REPO, run_mirrored

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from srgan_cli.training.archs.srresnet import build_generator  # noqa: E402
from srgan_cli.training.config import TrainConfig  # noqa: E402
from srgan_cli.training.discriminator import build_unet_discriminator  # noqa: E402

pytestmark = pytest.mark.tf


MIRRORED = """
config = TrainConfig(phase="gan", arch_params={"blocks": 1, "channels": 8}, hr_size=32, content_loss="mse", lr=1e-3,
                     discriminator="unet", gan_loss="ragan", ldl_weight=1.0, ema=0.9, teacher=sys.argv[2],
                     teacher_weight=1.0)
trainer = Trainer(config, strategy)
trainer.average = WeightAverage(trainer.generator, 0.9)
images = patches.load_photos(sys.argv[1], 32).images
batches = iter(strategy.experimental_distribute_dataset(data.make_dataset(images, 32, 4, seed=0)))
before = {w.path: np.array(w) for w in trainer.discriminator.weights}
rows = [trainer.train_step(*next(batches)) for _ in range(2)]
same = [w.path for w in trainer.discriminator.weights if np.array_equal(before[w.path], np.array(w))]
assert all(np.isfinite(list(row.values())).all() for row in rows), rows
assert set(same) <= {"logits/bias"}, same  # kernels and the power iteration's u move; RaGAN ignores a logit shift
assert sum(path.endswith("vector_u") for path in before) == 8
print("MIRRORED OK", rows[-1])
"""


def test_all_new_options_train_under_a_mirrored_strategy(photos, tmp_path):
    teacher = make_sr_model(tmp_path / "teacher.onnx", metadata={"scale": "4"})
    run_mirrored(MIRRORED, photos, teacher)


RUN_SCRIPT = """
import runpy, sys
script = sys.argv[1]
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def run_gan_script(photos, tmp_path, *extra):
    """scripts/gan_on_accelerator.py under JAX on the CPU from a tiny generator of its own: (init, out, the run)."""
    pytest.importorskip("jax")
    init = build_generator(1, 8)
    init.save_weights(tmp_path / "init.weights.h5")
    out = tmp_path / "out" / "g.weights.h5"
    args = ["--photos", photos, "--init", tmp_path / "init.weights.h5", "--out", out, "--blocks", "1", "--channels",
            "8", "--hr-size", "32", "--batch-size", "2", "--patches", "8", "--workers", "2", "--steps", "3",
            "--d-warmup", "1", "--log-every", "1", *extra]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", RUN_SCRIPT, REPO / "scripts" / "gan_on_accelerator.py", *args],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return init, out, done


def test_accelerator_gan_script_trains_under_jax_without_tensorflow(photos, tmp_path):
    init, out, done = run_gan_script(photos, tmp_path, "--content-loss", "vgg22", "--ldl-weight", "1",
                                     "--colour-weight", "2", "--ema", "0.5", "--keep-every", "2")
    assert "after 3 steps" in done.stdout and "tensorflow imported: False" in done.stdout, done.stdout
    assert "step 1 " in done.stdout and "ldl_loss" in done.stdout.splitlines()[-3]  # step 2 trains G with LDL
    assert "colour_loss" in done.stdout.splitlines()[-3]
    models = {}
    for name in ("g.weights.h5", "g.raw.weights.h5"):
        models[name] = build_generator(1, 8)
        models[name].load_weights(out.with_name(name))  # the TensorFlow side reads what JAX wrote
    for a, b, c in zip(init.trainable_weights, models["g.raw.weights.h5"].trainable_weights,
                       models["g.weights.h5"].trainable_weights, strict=True):
        assert not np.array_equal(a, b) and not np.array_equal(b, c)  # trained; the average lags behind
    unet = build_unet_discriminator()
    unet.load_weights(out.with_name("g.discriminator.weights.h5"))
    config = TrainConfig.load(out.with_name("g.config.json"))  # what srgan export reads beside the weights
    assert (config.discriminator, config.gan_loss, config.ldl_weight, config.colour_weight,
            config.arch_params["channels"]) == ("unet", "ragan", 1.0, 2.0, 8)
    assert not list(out.parent.glob("*partial*"))
    assert [p.name for p in out.parent.glob("*.step*")] == ["g.step2.weights.h5"]


TEACHER_PARAM = """7767517
3 3
Input        in0  0 1 data
Interp       up   1 1 data up 0=1 1=4.000000e+00 2=4.000000e+00
Convolution  conv 1 1 up output 0=3 1=3 4=1 5=1 6=81
"""


def write_nearest_teacher(folder):
    """A tiny x4 ncnn model: nearest enlargement, then a 3x3 convolution that passes each channel through."""
    kernel = np.zeros((3, 3, 3, 3), "<f4")
    kernel[[0, 1, 2], [0, 1, 2], 1, 1] = 1.0
    (folder / "nearest.param").write_text(TEACHER_PARAM)
    (folder / "nearest.bin").write_bytes(struct.pack("<I", 0) + kernel.tobytes() + np.zeros(3, "<f4").tobytes())
    return folder / "nearest.param"


def test_accelerator_gan_script_distils_an_ncnn_teacher_under_jax(photos, tmp_path):
    _, out, done = run_gan_script(photos, tmp_path, "--content-loss", "none", "--teacher",
                                  write_nearest_teacher(tmp_path), "--teacher-weight", "2", "--ema", "0")
    logged = [line for line in done.stdout.splitlines() if line.startswith("step ")]
    assert "teacher_loss" not in logged[0]  # the warm-up trains D alone
    losses = [float(line.split("teacher_loss ")[1].split()[0]) for line in logged[1:]]
    assert len(losses) == 2 and all(0.0 < loss < 2.0 for loss in losses), logged
    config = TrainConfig.load(out.with_name("g.config.json"))
    assert (config.teacher_weight, Path(config.teacher).name) == (2.0, "nearest.param")


def test_accelerator_pretrain_script_saves_inside_an_epoch_under_jax_without_tensorflow(photos, tmp_path):
    pytest.importorskip("jax")
    init = build_generator(1, 8)
    init.save_weights(tmp_path / "init.weights.h5")
    out = tmp_path / "p.weights.h5"
    args = ["--photos", photos, "--init", tmp_path / "init.weights.h5", "--out", out, "--blocks", "1", "--channels",
            "8", "--hr-size", "24", "--batch-size", "2", "--patches", "8", "--workers", "2", "--steps", "7",
            "--log-every", "5", "--save-every", "2", "--lr", "1e-3"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", RUN_SCRIPT, REPO / "scripts" / "pretrain_on_accelerator.py", *args],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]  # saves at steps 2 and 4 fall inside the first epoch of 5
    assert "after 7 steps" in done.stdout and "tensorflow imported: False" in done.stdout, done.stdout
    trained = build_generator(1, 8)
    trained.load_weights(out)  # the generator alone: no optimizer in the file
    pairs = zip(init.trainable_weights, trained.trainable_weights, strict=True)
    assert all(not np.array_equal(a, b) for a, b in pairs)
    assert not list(tmp_path.glob("*partial*"))
