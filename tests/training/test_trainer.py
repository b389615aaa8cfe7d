"""The Trainer under tf.distribute: a mirrored strategy over two logical CPUs steps and changes every weight."""

import pytest

from tests.training.helpers import run_mirrored

pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tf

MIRRORED = """
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
    run_mirrored(MIRRORED, photos, timeout=300)
