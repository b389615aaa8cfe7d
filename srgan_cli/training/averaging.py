"""Exponential moving average of the generator's weights: the copy a run validates, saves and exports."""

import zipfile
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

    def load(self, path):
        """Take the average saved at `path`.

        Raises:
            SrganError: the file is unreadable or holds an average of other weights (a one-line error, not a traceback).
        """
        try:
            with np.load(path) as saved:
                values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise SrganError(f"{path}: the saved weight average is unreadable ({err}); delete this checkpoint folder "
                             "to resume from the one before") from None
        if [v.shape for v in values] != [v.shape for v in self.values]:
            raise SrganError(f"{path}: the saved average does not match the generator's weights")
        self.values = values
