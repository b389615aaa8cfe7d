"""Training configuration: the one owner of every option's default and rule, saved as the run's config.json."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from srgan_cli.errors import UsageError

# the choices of each option with a fixed set of values: the Typer command's option types, and TrainConfig's rules
Phase = Literal["pretrain", "gan"]
PixelLoss = Literal["mse", "l1"]
ContentLoss = Literal["vgg54", "vgg22", "mse"]
Strategy = Literal["auto", "default", "mirrored", "multiworker"]
Degradation = Literal["bicubic", "realistic"]
DiscriminatorKind = Literal["vgg", "unet"]
GanLoss = Literal["bce", "ragan"]
CHOICES = {"phase": get_args(Phase), "pixel_loss": get_args(PixelLoss), "content_loss": get_args(ContentLoss),
           "strategy": get_args(Strategy), "degradation": get_args(Degradation),
           "discriminator": get_args(DiscriminatorKind), "gan_loss": get_args(GanLoss)}
POSITIVE = ("steps", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints", "log_every")
NON_NEGATIVE = ("adv_weight", "lattice_weight", "lowfreq_weight", "colour_weight", "pixel_weight", "overshoot_weight",
                "d_warmup", "lr_decay_every", "lr_decay_from", "sample_every", "ldl_weight", "teacher_weight")
SEED_RANGE = (0, 2**32 - 1)  # what NumPy and Keras accept as a seed
LATTICE_WINDOW = 32  # the lattice loss works on 8x8-pixel LR windows: HR crops in multiples of 32
UNET_WINDOW = 8  # the U-Net discriminator halves the crop three times: HR crops in multiples of 8
# on --resume these may change (extend the run, a new schedule, other validation); the rest is the run's own
RESUMABLE = frozenset({"steps", "lr", "lr_decay_every", "lr_decay_factor", "ema", "val", "val_every", "val_degrade",
                       "checkpoint_every", "keep_checkpoints", "sample_every", "log_every",
                       "mixed_precision"})  # weights and optimizer slots stay float32 under any policy
LEGACY_ARCH_KEYS = ("blocks", "channels")  # config.json files written before the architecture registry
ARCH_MINIMUMS = {"blocks": 0, "channels": 1}  # --blocks, --channels (0 blocks: the head, tail and upsamplers only)
CONFIG_ONLY = frozenset({"arch_params", "degradation_params", "lr_decay_from"})  # fields no flag sets
PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str, "bool": bool,
                                                   "dict": dict}  # by TrainConfig's annotations (an int is a float)
TYPE_NAMES = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false",
              "dict": "a mapping of names to values"}


@dataclass
class TrainConfig:
    """Everything needed to rebuild the networks and continue a run; `check()` enforces every rule."""

    data: str = ""
    phase: str = "pretrain"
    arch: str = "srresnet"
    arch_params: dict[str, Any] = field(default_factory=dict)
    steps: int = 100_000
    batch_size: int = 16
    hr_size: int = 96
    lr: float = 1e-4
    lr_decay_every: int | None = None  # None: never for pretrain, half the steps for gan (see `resolved`)
    lr_decay_factor: float = 0.1
    lr_decay_from: int = 0
    ema: float = 0.0
    pixel_loss: str = "mse"
    content_loss: str = "vgg54"
    adv_weight: float = 1e-3
    lattice_weight: float = 0.0
    lowfreq_weight: float = 0.0
    colour_weight: float = 0.0
    pixel_weight: float = 0.0
    overshoot_weight: float = 0.0
    d_warmup: int = 0
    discriminator: str = "vgg"
    gan_loss: str = "bce"
    ldl_weight: float = 0.0
    teacher: str = ""
    teacher_weight: float = 0.0
    vgg_weights: str = "imagenet"
    init: str = ""
    degradation: str = "bicubic"
    degradation_params: dict[str, Any] = field(default_factory=dict)
    val: str = ""
    val_degrade: str = ""
    val_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3  # the newest k checkpoints stay in checkpoint/, so a bad step has good ones behind it
    sample_every: int = 1000
    log_every: int = 50
    seed: int = 0
    strategy: str = "auto"
    mixed_precision: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """A config from a dict of known keys (old `blocks`/`channels` keys move into `arch_params`).

        Raises:
            UsageError: an unknown key.
        """
        values = dict(values)
        legacy = {k: values.pop(k) for k in LEGACY_ARCH_KEYS if k in values}
        values.pop("scale", None)  # an old field that changed nothing: the architecture owns its scale
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(values) - known))
        if unknown:
            raise UsageError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        config = cls(**values)
        if legacy and isinstance(config.arch_params, dict):  # not a mapping: check() says so
            config.arch_params = {**legacy, **config.arch_params}
        return config

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config.json (keys this version no longer knows are an error, except the legacy ones)."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"{path}: cannot read the config ({err})") from None
        if not isinstance(values, dict):
            raise UsageError(f"{path}: a config is a JSON object of option names to values")
        return cls.from_dict(values, str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def resolved(self) -> TrainConfig:
        """A checked copy with the phase-dependent defaults filled in."""
        self._check_types()
        decay = self.lr_decay_every
        if decay is None:
            decay = self.steps // 2 if self.phase == "gan" else 0
        config = dataclasses.replace(self, lr_decay_every=decay)
        config.check()
        return config

    def check(self) -> None:
        """Every rule on the options; a broken one is a UsageError naming the option."""
        self._check_types()
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                _bad(name, f"{getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name in POSITIVE:
            if not _finite(getattr(self, name)) or getattr(self, name) < 1:
                _bad(name, "must be a positive whole number")
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if value is not None and (not _finite(value) or value < 0):
                _bad(name, "must be a finite number >= 0")
        if not _finite(self.lr) or self.lr <= 0:
            _bad("lr", f"{self.lr} is not a finite learning rate > 0")
        if not _finite(self.lr_decay_factor) or self.lr_decay_factor <= 0:
            _bad("lr_decay_factor", "must be a finite number > 0")
        if not _finite(self.ema) or not 0 <= self.ema < 1:
            _bad("ema", "must be in [0, 1)")
        if not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            _bad("seed", f"must be in [{SEED_RANGE[0]}, {SEED_RANGE[1]}] (2**32 - 1), got {self.seed}")
        self._check_arch_params()
        self._check_crop()
        self._check_teacher()

    def _check_types(self) -> None:
        """Each option's value has its field's type: whole numbers are ints (not 2.5, 32.0 or true), text is text."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type)  # the annotation's text (annotations are strings here)
            if not _has_type(value, kind):
                what = TYPE_NAMES[kind.split("[")[0].split(" |")[0]]
                _bad(f.name, f"must be {what}, got {_shown(value)}")

    def _check_arch_params(self) -> None:
        """The generator's size parameters (any architecture's `blocks` and `channels`) are whole numbers in range."""
        for name, minimum in ARCH_MINIMUMS.items():
            value = self.arch_params.get(name, minimum)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                _bad(name, f"must be a whole number >= {minimum}, got {_shown(value)}")

    def _check_crop(self) -> None:
        if self.hr_size < 8 or self.hr_size % 4:
            _bad("hr_size", "must be a multiple of 4, at least 8")
        if self.lattice_weight and self.hr_size % LATTICE_WINDOW:
            _bad("hr_size", f"must be a multiple of {LATTICE_WINDOW} with lattice_weight (8x8-pixel LR windows)")
        if self.discriminator == "unet" and self.hr_size % UNET_WINDOW:
            _bad("hr_size", f"must be a multiple of {UNET_WINDOW} with the unet discriminator (three x2 downsamplings)")

    def _check_teacher(self) -> None:
        if self.teacher_weight and not self.teacher:
            _bad("teacher_weight", "needs --teacher (the ONNX model to distil)")
        if self.teacher and not self.teacher_weight:
            _bad("teacher", "needs --teacher-weight > 0 (the weight of its L1 term)")

    def lr_at(self, step: int) -> float:
        """Learning rate at `step`: lr times lr_decay_factor for every lr_decay_every steps done since lr_decay_from."""
        if not self.lr_decay_every:
            return self.lr
        return self.lr * self.lr_decay_factor ** (max(0, step - self.lr_decay_from) // self.lr_decay_every)


def _has_type(value: Any, kind: str) -> bool:
    """Whether `value` fits the annotation `kind` of a TrainConfig field (an int is a float, a bool is no number)."""
    if value is None:
        return kind.endswith("| None")
    if isinstance(value, bool):
        return kind == "bool"
    return isinstance(value, PYTHON_TYPES[kind.split("[")[0].split(" |")[0]])


def _shown(value: Any) -> str:
    """A value as the user wrote it (JSON), cut short."""
    return json.dumps(value, default=str)[:60]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bad(name: str, reason: str) -> None:
    raise UsageError(f"{option_name(name)}: {reason}")


def option_name(name: str) -> str:
    """How a user names the TrainConfig field `name`: its flag, or the config key where no flag sets it."""
    return f"config key {name!r}" if name in CONFIG_ONLY else f"--{name.replace('_', '-')}"


def merge(base: TrainConfig, given: dict[str, Any], resume: bool = False) -> TrainConfig:
    """`base` with the options given on the command line; on resume only RESUMABLE ones may differ.

    Raises:
        UsageError: an unknown option, or one a resumed run cannot change.
    """
    not_text = [k for k in given if not isinstance(k, str)]
    if not_text:
        raise UsageError(f"unknown option {not_text[0]!r} (option names are text, e.g. hr_size)")
    if "arch_params" in given:  # the parameters given go on top of the run's (which holds every default), not instead
        if not isinstance(given["arch_params"], dict):
            _bad("arch_params", f"must be {TYPE_NAMES['dict']}, got {_shown(given['arch_params'])}")
        given = {**given, "arch_params": {**base.arch_params, **given["arch_params"]}}
    if resume:
        fixed = sorted(k for k, v in given.items() if k not in RESUMABLE and getattr(base, k, v) != v)
        if fixed:
            option, value = _changed(fixed[0], base, given)
            raise UsageError(f"{option} cannot change on --resume (the run has {value!r}); "
                             f"only {', '.join(sorted(RESUMABLE))} can")
    return TrainConfig.from_dict({**dataclasses.asdict(base), **given})


def _changed(name: str, base: TrainConfig, given: dict[str, Any]) -> tuple[str, Any]:
    """The option a resume would change, as the user names it (an architecture parameter by its own flag or key),
    and the run's value of it.

    Args:
        name: the TrainConfig field that differs.
        base: the run's config.
        given: the options given (arch_params already on top of the run's).
    """
    if name != "arch_params":
        return option_name(name), getattr(base, name)
    key = next(k for k, v in given[name].items() if base.arch_params.get(k, v) != v or k not in base.arch_params)
    option = f"--{key}" if key in ARCH_MINIMUMS else f"config key 'arch_params.{key}'"
    return option, base.arch_params.get(key)
