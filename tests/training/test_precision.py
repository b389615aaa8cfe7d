"""--mixed-precision's dtype policy (training/precision.py): float16 on GPUs, bfloat16 on CPUs that have it."""

import pytest

from srgan_cli.errors import SrganError
from srgan_cli.training.precision import cpu_has_bf16, dtype_policy, needs_loss_scaling


@pytest.mark.parametrize("mixed,gpus,bf16,policy", [
    (False, 1, True, "float32"), (False, 0, False, "float32"),
    (True, 2, False, "mixed_float16"), (True, 1, True, "mixed_float16"),
    (True, 0, True, "mixed_bfloat16"),
])
def test_the_policy_follows_the_hardware(mixed, gpus, bf16, policy):
    assert dtype_policy(mixed, gpus, bf16) == policy


def test_a_cpu_without_bfloat16_is_refused_in_one_line():
    with pytest.raises(SrganError, match="no bfloat16 instructions") as err:
        dtype_policy(True, 0, False)
    assert "\\n" not in str(err.value)


def test_only_float16_scales_the_loss():
    assert needs_loss_scaling("mixed_float16")
    assert not needs_loss_scaling("mixed_bfloat16") and not needs_loss_scaling("float32")


@pytest.mark.parametrize("flags,has", [("fpu avx512f avx512_bf16 sse", True), ("fpu amx_bf16 amx_tile", True),
                                       ("fpu avx512f avx512_vnni", False), ("fpu avx512_bf16x", False)])
def test_bf16_is_read_from_the_cpu_flags(tmp_path, flags, has):
    (tmp_path / "cpuinfo").write_text(f"processor\\t: 0\\nflags\\t\\t: {flags}\\n")
    assert cpu_has_bf16(tmp_path / "cpuinfo") is has


def test_an_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_has_bf16(tmp_path / "missing") is False


@pytest.fixture
def bf16_cpu(monkeypatch):
    """This CPU counts as having bfloat16 (TensorFlow emulates it where it has not); the policy is reset after."""
    keras = pytest.importorskip("keras")
    from srgan_cli.training import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.tf
def test_a_run_resumes_with_or_without_mixed_precision(photos, tmp_path, bf16_cpu):
    from tests.training.helpers import TINY, saved_step, train

    first = train("--data", photos, "--runs", tmp_path, "--name", "r", *TINY, "--steps", "2", "--mixed-precision", "-q")
    assert first.exit_code == 0, first.output
    again = train("--runs", tmp_path, "--name", "r", "--resume", "--steps", "4", "--no-mixed-precision", "-q")
    assert again.exit_code == 0, again.output
    assert saved_step(tmp_path / "r") == 4 and not list((tmp_path / "r" / "checkpoint").glob("*.bad"))


@pytest.mark.tf
def test_checkpoints_keep_adams_slots_and_read_those_of_a_loss_scale_optimizer(tmp_path):
    keras = pytest.importorskip("keras")
    import numpy as np

    from srgan_cli.training.checkpoint import LOSS_SCALE_VARIABLES, _load_optimizer, _save_optimizer

    weights = [keras.Variable(np.ones((2, 3), "float32")), keras.Variable(np.zeros(3, "float32"))]
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    scaled.build(weights)
    _save_optimizer(scaled, tmp_path / "new.npz")
    adam = keras.optimizers.Adam(1e-3)
    adam.build(weights)
    assert len(np.load(tmp_path / "new.npz").files) == len(adam.variables)  # the inner Adam's only
    slots = [np.full(v.shape, i + 1.0, "float32") for i, v in enumerate(adam.variables)]
    own = [np.float32(7.0)] * LOSS_SCALE_VARIABLES  # what a whole LossScaleOptimizer saved before session 15
    np.savez(tmp_path / "old.npz", *own, *slots)
    _load_optimizer(adam, weights, tmp_path / "old.npz")
    assert all(np.array_equal(v.numpy(), s) for v, s in zip(adam.variables, slots, strict=True))


@pytest.mark.tf
def test_the_content_loss_network_computes_in_float32_under_bfloat16(bf16_cpu):
    keras = pytest.importorskip("keras")
    import tensorflow as tf

    from srgan_cli.training.config import TrainConfig
    from srgan_cli.training.trainer import Trainer

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = TrainConfig(phase="gan", content_loss="vgg22", vgg_weights="random", hr_size=32,
                         arch_params={"blocks": 1, "channels": 8})
    trainer = Trainer(config, tf.distribute.get_strategy())
    assert trainer.generator.layers[1].compute_dtype == "bfloat16"
    assert {layer.compute_dtype for layer in trainer.extractor.layers[1:]} == {"float32"}
