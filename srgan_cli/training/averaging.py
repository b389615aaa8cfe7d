"""Exponential moving average of the generator's weights: the copy a run validates, saves and exports."""

from contextlib import contextmanager

import numpy as np

from srgan_cli.errors import SrganError


class WeightAverage:
    """Polyak/EMA average of every generator weight (trainable and BatchNorm statistics), kept in numpy.

    Args:
        model (keras.Model): the model whose weights are averaged; the average starts at its current weights.
        decay (float): weight of the old average at each update (0.999 averages over about the last 1,000 steps).
    """

    def __init__(self, model, decay):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.values = [np.array(w, dtype=np.float32) for w in model.get_weights()]

    def update(self, model):
        """Move the average toward the model's current weights."""
        for average, current in zip(self.values, model.get_weights(), strict=False):
            average += (1.0 - self.decay) * (current - average)

    @contextmanager
    def applied(self, model):
        """Inside the block `model` holds the averaged weights; its own come back afterwards."""
        own = model.get_weights()
        model.set_weights(self.values)
        try:
            yield model
        finally:
            model.set_weights(own)

    def save(self, path):
        np.savez(path, *self.values)

    def adopt(self, values, source):
        """Take `values` (a saved average, read from `source`) as the average.

        Raises:
            SrganError: they are an average of other weights (a one-line error, not a traceback).
        """
        if [np.shape(v) for v in values] != [v.shape for v in self.values]:
            raise SrganError(f"{source}: the saved average does not match the generator's weights")
        self.values = [np.array(v, dtype=np.float32) for v in values]
