"""Watching an adversarial run for a discriminator that has won outright (its loss near zero, the generator's
adversarial gradient gone), so the log says so while there is time to stop and change the recipe."""

from __future__ import annotations

from collections import deque

WINDOW = 50  # steps averaged: one lucky batch is not a collapse
FLOOR = 0.02  # the mean D loss (real + fake terms) under which D is taken to classify every crop with ~99% confidence
REARM = 5.0  # the loss must climb back to REARM * FLOOR before a later collapse is reported again


class DiscriminatorWatch:
    """Reports once per collapse when the discriminator's loss, averaged over `window` steps, falls under `floor`.

    Args:
        window: steps averaged before judging.
        floor: the mean loss taken as the discriminator winning outright.
    """

    def __init__(self, window: int = WINDOW, floor: float = FLOOR) -> None:
        self.window, self.floor = window, floor
        self.recent: deque[float] = deque(maxlen=window)
        self.reported = False

    def update(self, step: int, d_loss: float) -> str | None:
        """Feed one adversarial step's discriminator loss; returns the warning line when a collapse starts."""
        self.recent.append(d_loss)
        if len(self.recent) < self.window:
            return None
        mean = sum(self.recent) / len(self.recent)
        if self.reported:
            self.reported = mean < REARM * self.floor
            return None
        if mean >= self.floor:
            return None
        self.reported = True
        return (f"the discriminator has won outright at step {step} (d_loss {mean:.2g} over the last "
                f"{len(self.recent)} steps): the generator learns little from it now; try a lower --adv-weight "
                f"or --lr, a shorter --d-warmup, or --discriminator unet")
