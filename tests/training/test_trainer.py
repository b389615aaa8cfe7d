"""The Trainer under tf.distribute: a mirrored strategy over two logical CPUs steps and changes every weight."""

import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tf

MIRRORED = """
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.trainer import Trainer
from srgan_cli.training.loop import make_strategy
from srgan_cli.training import data, patches
strategy = make_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
trainer = Trainer(TrainConfig(arch_params={"blocks": 1, "channels": 8}, hr_size=24, lr=1e-3), strategy)
images = patches.load_photos(sys.argv[1], 24).images
batches = iter(strategy.experimental_distribute_dataset(data.make_dataset(images, 24, 4, seed=0)))
before = [np.array(w) for w in trainer.generator.trainable_weights]
losses = [trainer.train_step(*next(batches))["g_loss"] for _ in range(3)]
after = [np.array(w) for w in trainer.generator.trainable_weights]
assert all(np.isfinite(losses)), losses
assert all(not np.array_equal(a, b) for a, b in zip(before, after))
print("MIRRORED OK", losses)
"""


def test_mirrored_strategy_trains_on_two_logical_cpus(photos):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(photos)], capture_output=True, text=True, timeout=300)
    assert "MIRRORED OK" in result.stdout, result.stderr[-2000:]
