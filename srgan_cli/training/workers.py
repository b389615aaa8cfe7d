"""What every worker does alike: where it writes, the agreement check, the per-step sync, and a lost peer's line."""

from __future__ import annotations

import json
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from srgan_cli.errors import LostPeerError, SrganError
from srgan_cli.training.distributed import Worker, brief
from srgan_cli.training.runfolder import RunFolder

LOST_PEER = ("UnavailableError", "DeadlineExceededError", "CancelledError", "AbortedError", "FailedPreconditionError",
             "InternalError")  # what a collective raises when a peer died, restarted, hangs or was cut off


@contextmanager
def writable(run: RunFolder, worker: Worker) -> Iterator[RunFolder]:
    """Where this worker writes: the chief the run folder itself, the others a temporary folder removed at exit.

    Every worker saves exactly what the chief saves, so each takes part in any collective a save needs
    (TensorFlow's documented multi-worker pattern); only the chief's copy is kept.

    Args:
        run: the run folder the chief writes.
        worker: this process's place in the cluster.
    """
    if worker.chief:
        yield run
        return
    scratch = tempfile.mkdtemp(prefix=f"srgan-worker{worker.index}-")
    try:
        yield RunFolder(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class StepSync:
    """After every step, one all-reduce: BatchNorm's moving statistics averaged over the replicas, and whether any
    worker was asked to stop (SIGINT/SIGTERM), so that every worker stops after the same step.

    Each replica normalises with its own share of the batch (as in any data-parallel run) and so moves its copy of
    the statistics its own way; averaging them after every step keeps what one process would if each step's
    statistics were the replicas' mean (Keras 2's MEAN aggregation), and the weights equal everywhere.
    Synchronised batch statistics (BatchNormalization(synchronized=True)) would match one process exactly, but cost
    five collectives per layer and step: 4.5x slower on two localhost workers.

    Args:
        trainer: the Trainer whose generator and discriminator to keep in step.
        strategy: its strategy; with one replica nothing is exchanged.
        workers: how many processes train together.
    """

    def __init__(self, trainer: Any, strategy: Any, workers: int = 1):
        import keras
        import tensorflow as tf

        models = [m for m in (trainer.generator, trainer.discriminator) if m is not None]
        layers = [layer for m in models for layer in m._flatten_layers()
                  if isinstance(layer, keras.layers.BatchNormalization)]
        self.variables = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
        self.strategy, self.workers, self.agreed = strategy, workers, False
        wanted = strategy.num_replicas_in_sync > 1 and (self.variables or workers > 1)
        self._reduce = tf.function(lambda flag: strategy.run(self._replica_mean, args=(flag,))) if wanted else None

    def _replica_mean(self, flag: Any) -> Any:
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        values = [tf.identity(v.value) for v in self.variables] + [tf.identity(flag)]  # on this replica's device
        means = context.all_reduce(tf.distribute.ReduceOp.MEAN, values)
        for variable, mean in zip(self.variables, means, strict=False):
            variable.assign(mean)
        return means[-1]

    def after_step(self, stop: str | None) -> None:
        """Exchange after a step.

        Args:
            stop: the signal this worker received, if any.
        """
        if self._reduce is None:
            return
        import tensorflow as tf

        flag = self._reduce(tf.constant(1.0 if stop else 0.0))
        self.agreed = float(self.strategy.experimental_local_results(flag)[0]) > 0

    def stopping(self, stop: str | None) -> bool:
        """Whether to stop now: one process at once on its signal, several workers all after the same step.

        Args:
            stop: the signal this worker received, if any.
        """
        return self.agreed if self.workers > 1 else bool(stop)


def digest(model: Any) -> str:
    """A CRC-32 of a model's weights, bit for bit, as 8 hex digits: equal on every worker of a run.

    Args:
        model: a Keras model.
    """
    crc = 0
    for weight in model.get_weights():
        crc = zlib.crc32(np.ascontiguousarray(weight).tobytes(), crc)
    return f"{crc:08x}"


def fingerprint(values: Sequence[Any]) -> int:
    """A 31-bit checksum of JSON-able values, to compare what the workers were started with.

    Args:
        values: JSON-able values (others by their str).
    """
    return zlib.crc32(json.dumps(list(values), sort_keys=True, default=str).encode()) & 0x7FFFFFFF


def check_agreement(strategy: Any, worker: Worker, step: int, options: dict[str, Any]) -> None:
    """Every worker must start from the same step with the same options; one collective compares them.

    Args:
        strategy: the run's multi-worker strategy.
        worker: this process's place in the cluster (alone: nothing to compare).
        step: the step this worker starts from (0, or its checkpoint's).
        options: what every worker must share.

    Raises:
        SrganError: on every worker, naming the first worker that differs from the chief.
    """
    if worker.count < 2:
        return
    import tensorflow as tf

    mine = tf.constant([[step, fingerprint(sorted(options.items()))]], tf.int64)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: mine)
    every = strategy.gather(per_replica, axis=0).numpy().tolist()
    chief = every[0]
    for index, theirs in enumerate(every):
        if theirs[0] != chief[0]:
            raise SrganError(f"{worker}: the workers start from different steps ({chief[0]} on the chief, "
                             f"{theirs[0]} on replica {index}): every worker needs the same run folder (a shared "
                             f"--runs, or a copy of the chief's checkpoint at the same path)")
        if theirs[1] != chief[1]:
            raise SrganError(f"{worker}: replica {index} was started with other training options than the chief: "
                             "start every worker with the same options")


@contextmanager
def stop_on_lost_peer(worker: Worker, run: RunFolder) -> Iterator[None]:
    """Turn the error of a collective whose peer died or hung into one line saying how to continue.

    Args:
        worker: this process's place in the cluster (alone: errors pass unchanged).
        run: the run folder, whose newest checkpoint the line names.

    Raises:
        SrganError: a lost peer; any other error passes unchanged.
    """
    try:
        yield
    except Exception as err:
        if worker.count < 2 or type(err).__name__ not in LOST_PEER:
            raise
        latest = run.latest_checkpoint()
        then = (f"restart every worker with --resume to continue from the chief's step {latest[0]}" if latest
                else "no checkpoint was saved yet: start every worker again")
        raise LostPeerError(f"{worker}: lost contact with the other workers ({type(err).__name__}: {brief(err)}); "
                         f"a worker stopped, hangs or cannot be reached, so every worker stops; {then}") from None
