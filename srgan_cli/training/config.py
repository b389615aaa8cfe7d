"""Training configuration: one dataclass, saved as config.json in the run folder (no TensorFlow here)."""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    """Everything needed to rebuild the networks and continue a run."""

    data: str = ""
    phase: str = "pretrain"
    steps: int = 100_000
    batch_size: int = 16
    hr_size: int = 96
    lr: float = 1e-4
    lr_decay_every: int = 0
    lr_decay_factor: float = 0.1
    lr_decay_from: int = 0
    ema: float = 0.0
    blocks: int = 16
    channels: int = 64
    pixel_loss: str = "mse"
    content_loss: str = "vgg54"
    adv_weight: float = 1e-3
    lattice_weight: float = 0.0
    lowfreq_weight: float = 0.0
    pixel_weight: float = 0.0
    overshoot_weight: float = 0.0
    d_warmup: int = 0
    vgg_weights: str = "imagenet"
    init: str = ""
    val: str = ""
    val_every: int = 1000
    checkpoint_every: int = 500
    sample_every: int = 1000
    log_every: int = 50
    seed: int = 0
    strategy: str = "auto"
    mixed_precision: bool = False
    scale: int = 4

    def save(self, path):
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(Path(path).read_text()).items() if k in known})

    def lr_at(self, step):
        """Learning rate at `step`: lr times lr_decay_factor for every lr_decay_every steps done since lr_decay_from."""
        if self.lr_decay_every <= 0:
            return self.lr
        return self.lr * self.lr_decay_factor ** (max(0, step - self.lr_decay_from) // self.lr_decay_every)
