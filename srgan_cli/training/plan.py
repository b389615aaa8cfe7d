"""A run resolved before TensorFlow is imported: its config from defaults, a file, flags or the resumed run, checked."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation import degradations
from srgan_cli.training.checkpoint import has_checkpoint
from srgan_cli.training.config import TrainConfig, merge
from srgan_cli.training.runfolder import RunFolder

SCHEDULE = frozenset({"lr", "lr_decay_every", "lr_decay_factor"})


@dataclass
class RunPlan:
    """What `train` will do: the folder, the resolved config and whether it continues a checkpoint."""

    run: RunFolder
    config: TrainConfig
    resume: bool


def plan_run(run_dir: str | Path, given: dict[str, Any], resume: bool = False) -> RunPlan:
    """Resolve and check a run without touching the disk.

    Args:
        run_dir: the run folder.
        given: the options set by a config file and the command line (flags win), by TrainConfig field name.
        resume: continue the run in `run_dir`; its config.json is the base, and only resumable options may change.

    Raises:
        SrganError: a missing run, data or file; UsageError: a bad option.
    """
    run = RunFolder(run_dir)
    if resume:
        if not has_checkpoint(run.checkpoint) or not run.config.is_file():
            raise SrganError(f"{run_dir}: no checkpoint to resume from")
        saved = TrainConfig.load(run.config)
        config = merge(saved, given, resume=True)
        if any(getattr(saved, k) != getattr(config, k) for k in SCHEDULE):
            config = dataclasses.replace(config, lr_decay_from=run.saved_state().step)
    else:
        if has_checkpoint(run.checkpoint):
            raise SrganError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --name")
        config = merge(TrainConfig(), given)
    config = _with_degradation(config.resolved())
    _check_paths(config, resume)
    return RunPlan(run, config, resume)


def _check_paths(config: TrainConfig, resume: bool = False) -> None:
    if not config.data:
        raise UsageError("--data is required (a folder of photos)")
    for option, value in (("data", config.data), ("val", config.val)):
        if value and not Path(value).is_dir():
            raise SrganError(f"--{option} {value}: not a folder")
    if config.init and not resume and not Path(config.init).exists():  # a resumed run starts from its checkpoint
        raise SrganError(f"--init {config.init}: not found")
    degradations.parse_spec_list(config.val_degrade)  # now, not after the photos are read (unused without --val)


def _with_degradation(config: TrainConfig) -> TrainConfig:
    """Record every parameter of the realistic pipeline (defaults filled in, checked) in the config."""
    if config.degradation != "realistic":
        return config
    params = degradations.params_from_dict(config.degradation_params, "degradation_params")
    return dataclasses.replace(config, degradation_params=degradations.params_to_dict(params))
