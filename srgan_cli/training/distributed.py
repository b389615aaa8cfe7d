"""Several workers: the strategy made before TensorFlow starts, each worker's role, and a bound on lost peers."""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from srgan_cli.errors import SrganError, UsageError

log = logging.getLogger("srgan")
WORKER_TIMEOUT = 60  # seconds without a peer's heartbeat before every worker stops (--worker-timeout)
STARTUP_TIMEOUT = 600  # seconds the workers wait for each other at start-up
WATCHDOG = """import select, sys
if not select.select([int(sys.argv[1])], [], [], float(sys.argv[2]))[0]:
    sys.stderr.write("error: " + sys.argv[3] + "\\n")
"""  # prints the message unless the pipe closes first (the block ended, or the process is gone)


@dataclass(frozen=True)
class Worker:
    """This process's place in the cluster: the chief (index 0) writes the run folder, the others only compute.

    Args:
        index: 0 for the chief, then the workers in TF_CONFIG's order.
        count: how many processes train together.
    """

    index: int = 0
    count: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0

    def __str__(self) -> str:
        return f"worker {self.index} of {self.count}"


def worker_from_env(environ: dict[str, str] | None = None) -> Worker:
    """This process's place as TF_CONFIG describes it (a single worker without one), read without TensorFlow.

    Args:
        environ: the environment to read TF_CONFIG from (default: this process's).

    Raises:
        UsageError: TF_CONFIG is not JSON, or names a task this command does not run (a parameter server).
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return Worker()
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        order = [(kind, i) for kind in ("chief", "worker") for i in range(len(cluster.get(kind, [])))]
        if not order:
            return Worker()
        if set(cluster) - {"chief", "worker"}:
            raise UsageError(f"TF_CONFIG: only chief and worker tasks train together, not {sorted(cluster)}")
        return Worker(order.index((task.get("type"), int(task.get("index", 0)))), len(order))
    except (ValueError, TypeError, AttributeError) as err:
        raise UsageError(f"TF_CONFIG: not a cluster and a task of it ({str(err)[:160]})") from None


def pick_strategy(name: str) -> str:
    """The strategy `auto` stands for: multiworker under a TF_CONFIG of several workers, else decided by GPUs.

    Args:
        name: the --strategy value; any name but auto comes back unchanged.
    """
    if name == "auto" and worker_from_env().count > 1:
        return "multiworker"
    return name


def make_strategy(name: str, worker_timeout: int = WORKER_TIMEOUT,
                  quiet: Callable[[], AbstractContextManager[Any]] = nullcontext) -> Any:
    """The tf.distribute strategy by name; call it before any TensorFlow op (multiworker needs a fresh context).

    Args:
        name: auto (multiworker under a TF_CONFIG cluster, mirrored with more than one GPU, else default), default,
            mirrored or multiworker.
        worker_timeout: multiworker: seconds without a heartbeat from a worker after which every worker stops with
            an error (0: TensorFlow's own, 10 s); they wait startup_timeout(worker_timeout) for each other first.
        quiet: a context in which TensorFlow starts (probing devices, writing what it finds to stderr).

    Raises:
        SrganError: an unknown name, or multiworker asked for after TensorFlow started.
    """
    import tensorflow as tf

    name = pick_strategy(name)
    if name == "multiworker":
        return _multi_worker(tf, worker_timeout, quiet)
    with quiet():
        gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise SrganError(f"unknown strategy {name!r}: use auto, default, mirrored or multiworker")


def _multi_worker(tf: Any, worker_timeout: int, quiet: Callable[[], AbstractContextManager[Any]]) -> Any:
    worker = worker_from_env()
    if worker.count < 2:
        raise UsageError("--strategy multiworker needs TF_CONFIG naming two or more workers and this one's index")
    _configure_coordination(worker_timeout)
    wait = startup_timeout(worker_timeout)
    log.info("%s: waiting up to %d s for every worker of TF_CONFIG to start", worker, wait)
    late = (f"{worker}: the other workers of TF_CONFIG did not all start within {wait} s: start every worker, each "
            "with its own task index, and check that their addresses are reachable")
    try:
        with deadline(wait, late), quiet():
            return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:
        if "program startup" not in str(err):
            raise
        raise SrganError("--strategy multiworker: TensorFlow had started before the strategy was made; create it "
                         "first (srgan_cli.training.distributed.make_strategy) as `srgan train` does") from None
    except tf.errors.OpError as err:
        raise SrganError(f"{worker}: the workers of TF_CONFIG could not start together ({type(err).__name__}: "
                         f"{brief(err)})") from None


@contextmanager
def deadline(seconds: int, message: str) -> Iterator[None]:
    """End the process (exit 1, `message` on stderr) if the block still runs after `seconds`.

    TensorFlow waits for the cluster inside C++ holding the GIL (for up to an hour), where no Python thread, signal
    handler or exception can act: a watchdog process prints the message, and faulthandler's C thread exits.

    Args:
        seconds: how long the block may run.
        message: the line printed (after "error: ") when it runs longer.
    """
    read, write = os.pipe()
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(read), str(seconds), message], pass_fds=(read,),
                                stdin=subprocess.DEVNULL)
    os.close(read)
    with open(os.devnull, "w") as sink:
        faulthandler.dump_traceback_later(seconds + 1, exit=True, file=sink)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
            os.close(write)  # the watchdog sees the pipe close and leaves quietly
            watchdog.wait(timeout=10)


def startup_timeout(worker_timeout: int) -> int:
    """Seconds the workers wait for each other at start-up: STARTUP_TIMEOUT, or more with a longer worker timeout.

    Args:
        worker_timeout: the --worker-timeout seconds.
    """
    return max(worker_timeout, STARTUP_TIMEOUT)


def _configure_coordination(worker_timeout: int) -> None:
    """Set up TensorFlow's coordination service as MultiWorkerMirroredStrategy would, with our time bounds.

    Each worker sends the chief's coordination service heartbeats; one that misses them for `worker_timeout` seconds
    (dead, stopped, or cut off) is reported to every worker, whose pending collectives then fail with
    UnavailableError (a process that exits is found sooner: its connections reset). 0 keeps TensorFlow's bounds.
    """
    if not worker_timeout:
        return
    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
        from tensorflow.python.distribute import multi_worker_util
        from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
        from tensorflow.python.eager import context
    except ImportError:
        log.warning("this TensorFlow lays out its coordination service differently: --worker-timeout is not applied")
        return
    spec = TFConfigClusterResolver().cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec), coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=worker_timeout * 1000)


def brief(err: BaseException) -> str:
    """The first 160 characters of an error's text, without TensorFlow's {{function_node ...}} prefixes.

    Args:
        err: the error, often a tf.errors.OpError.
    """
    return re.sub(r"\{\{[^}]*\}\}\s*", "", " ".join(str(err).split()))[:160]


def worker_of(strategy: Any) -> Worker:
    """The role of this process under `strategy`: the chief of a single-process strategy is the process itself.

    Args:
        strategy: a tf.distribute strategy; a multi-worker one carries its cluster resolver.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return Worker()
    spec = resolver.cluster_spec().as_dict()
    order = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    if len(order) < 2:
        return Worker()
    return Worker(order.index((resolver.task_type, resolver.task_id)), len(order))
