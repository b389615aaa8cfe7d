"""Multi-worker training: real worker processes on 127.0.0.1 (the README's commands), lost peers, the crop split."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from srgan_cli.errors import UsageError
from srgan_cli.training.distributed import Worker, worker_from_env
from srgan_cli.training.workers import digest
from tests.training.helpers import REPO, saved_step

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf

TINY = ["--blocks", "1", "--channels", "8", "--hr-size", "24", "--batch-size", "4", "--lr", "1e-3", "--sample-every",
        "0"]  # as the README's commands
DIGEST = re.compile(r"worker (\d) of 2: at step (\d+), generator weights ([0-9a-f]{8})")
TIMEOUT = 240  # seconds a worker may run: a few on an idle machine, two minutes on a loaded one
# one process with two logical CPUs: a MirroredStrategy of two replicas, the same split as two workers of one each
TWO_REPLICAS = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from srgan_cli.cli import main
sys.argv = ["srgan", *sys.argv[1:]]
main()
"""


def free_ports(count):
    """Ports free on 127.0.0.1 now (each bound once by the system, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def environment(tmp_path, ports=None, index=0):
    """The environment of a worker: its TF_CONFIG on 127.0.0.1 and a TMPDIR of the test's own."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    env.pop("TF_CONFIG", None)
    if ports:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    return env


@contextmanager
def started(tmp_path, args, count=2, code=None):
    """`count` `srgan train ARGS` workers on free localhost ports (or one process running `code`); killed at exit."""
    ports = free_ports(count) if count > 1 else None
    (tmp_path / "tmp").mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for index in range(count):
            log = (tmp_path / f"worker{index}.log").open("w")
            command = ["-c", code] if code else ["-m", "srgan_cli"]
            procs.append(subprocess.Popen([sys.executable, *command, "train", *map(str, args)], cwd=REPO, text=True,
                                          env=environment(tmp_path, ports, index), stdout=log, stderr=log))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def finished(tmp_path, procs, timeout=TIMEOUT):
    """(exit code, output) of each process, waiting at most `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    return [(p.returncode, (tmp_path / f"worker{i}.log").read_text()) for i, p in enumerate(procs)]


def digests(results):
    """The generator-weights digest each worker reports at its last step."""
    found = [DIGEST.findall(output) for _, output in results]
    assert all(found), [output[-2000:] for _, output in results]
    return {(int(i), int(step), value) for f in found for i, step, value in f}


def checkpoint_weights(run):
    from srgan_cli.training.archs.srresnet import build_generator

    newest = sorted(Path(run).glob("checkpoint/step_*/generator.weights.h5"))[-1]
    generator = build_generator(1, 8)
    generator.load_weights(newest)
    return generator


def readme_commands(ports):
    """The README's two-worker commands, on free ports instead of 23456 and 23457."""
    text = (REPO / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "TF_CONFIG=" in b and "--resume" in b)
    assert "127.0.0.1:23456" in block and "127.0.0.1:23457" in block
    return block.replace("127.0.0.1:23456", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:23457", f"127.0.0.1:{ports[1]}")


def run_shell(script, cwd, env, timeout=2 * TIMEOUT):
    """Run a bash script in its own process group; on timeout the group (the workers too) is killed."""
    proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a worker left behind by a timeout or a failed `wait`
        proc.wait()


def test_the_readme_commands_train_two_workers_alike_resume_and_match_one_process(photos, tmp_path):
    here = tmp_path / "a"
    (here / "tmp").mkdir(parents=True)
    (here / "photos").symlink_to(photos)
    env = environment(here)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `srgan` of this environment
    one = ["--data", photos, "--runs", tmp_path / "runs", *TINY, "--name", "one", "--steps", "6", "--strategy",
           "mirrored"]  # the reference: one process, two replicas, alongside
    with started(tmp_path / "c", one, count=1, code=TWO_REPLICAS) as reference:
        assert run_shell(readme_commands(free_ports(2)), here, env) == 0
        (code, output), = finished(tmp_path / "c", reference)
    assert code == 0, output[-2000:]
    logs = {name: (here / f"{name}.log").read_text() for name in ("worker0", "worker1", "resume0", "resume1")}
    first = digests([(None, logs["worker0"]), (None, logs["worker1"])])
    assert {(i, step) for i, step, _ in first} == {(0, 3), (1, 3)}, logs
    assert len({value for *_, value in first}) == 1  # the same weights, bit for bit, on both workers
    second = digests([(None, logs["resume0"]), (None, logs["resume1"])])
    assert {(i, step) for i, step, _ in second} == {(0, 6), (1, 6)}, logs
    (value,) = {value for *_, value in second}
    run = here / "runs" / "two"
    assert digest(checkpoint_weights(run)) == value  # what the chief saved
    assert saved_step(run) == 6 and sorted(os.listdir(here / "runs")) == ["two"]
    assert [row.split(",")[0] for row in (run / "log.csv").read_text().splitlines()] == ["step", "3", "6"]
    assert not list((here / "tmp").iterdir())  # the other worker's temporary run folders are gone
    assert "Traceback" not in "".join(logs.values())
    two_workers, one_process = checkpoint_weights(run), checkpoint_weights(tmp_path / "runs" / "one")
    for a, b in zip(two_workers.get_weights(), one_process.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_a_lost_worker_stops_the_other_within_the_timeout(photos, tmp_path, how):
    args = ["--data", photos, "--runs", tmp_path / "runs", "--name", "lost", *TINY, "--steps", "100000",
            "--log-every", "1", "--checkpoint-every", "1000", "--worker-timeout", "5"]
    with started(tmp_path, args) as (chief, other):
        log = tmp_path / "runs" / "lost" / "log.csv"
        deadline = time.monotonic() + TIMEOUT
        while not log.is_file() and chief.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert log.is_file(), (tmp_path / "worker0.log").read_text()[-2000:]
        other.send_signal(how)
        lost = time.monotonic()
        chief.wait(timeout=30)
        took = time.monotonic() - lost
    output = (tmp_path / "worker0.log").read_text()
    assert chief.returncode == 1 and "Traceback" not in output, output[-2000:]
    assert "worker 0 of 2: lost contact with the other workers" in output
    assert "start every worker again" in output  # no checkpoint yet: what to do next
    assert took < 5 + 20


def test_sigterm_to_one_worker_stops_both_after_the_same_step_with_a_checkpoint(photos, tmp_path):
    args = ["--data", photos, "--runs", tmp_path / "runs", "--name", "stop", *TINY, "--steps", "100000",
            "--log-every", "1", "--checkpoint-every", "1000"]
    with started(tmp_path, args) as procs:
        log = tmp_path / "runs" / "stop" / "log.csv"
        deadline = time.monotonic() + TIMEOUT
        while not log.is_file() and procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGTERM)  # a preempted machine
        results = finished(tmp_path, procs, timeout=120)
    assert [code for code, _ in results] == [143, 143], [output[-2000:] for _, output in results]
    (_, step, _), = {(0, step, value) for _, step, value in digests(results)}  # the same step and weights on both
    assert saved_step(tmp_path / "runs" / "stop") == step
    assert "another worker was asked to stop" in results[0][1]


def test_each_worker_crops_its_slice_of_every_global_batch(photos):
    from srgan_cli.training import data, patches

    images = patches.load_photos(photos, 24).images
    whole = data.make_dataset(images, 24, 4, seed=3, first_step=2).take(2)
    parts = [list(data.make_dataset(images, 24, 4, 3, 2, pipeline=p, pipelines=2, replicas=2).take(2)) for p in (0, 1)]
    for step, (lr, hr) in enumerate(whole):
        np.testing.assert_array_equal(hr, np.concatenate([parts[0][step][1], parts[1][step][1]]))
        np.testing.assert_array_equal(lr, np.concatenate([parts[0][step][0], parts[1][step][0]]))


def test_tf_config_gives_the_worker_and_the_chief():
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    assert worker_from_env({}) == Worker(0, 1)
    assert worker_from_env({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})}
                           ) == Worker(0, 3)
    second = worker_from_env({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})})
    assert second == Worker(2, 3) and not second.chief and str(second) == "worker 2 of 3"
    for bad in ("{not json", json.dumps({"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {}})):
        with pytest.raises(UsageError, match="TF_CONFIG"):
            worker_from_env({"TF_CONFIG": bad})


def test_a_worker_alone_stops_when_the_others_never_start(photos, tmp_path):
    code = "import sys; from srgan_cli.training import distributed; distributed.STARTUP_TIMEOUT = 3\n" + TWO_REPLICAS[
        TWO_REPLICAS.index("from srgan_cli.cli"):]
    ports = free_ports(2)
    env = environment(tmp_path, ports, 0)
    args = ["--data", photos, "--runs", tmp_path, "--name", "alone", *TINY, "--steps", "1", "--worker-timeout", "1"]
    result = subprocess.run([sys.executable, "-c", code, "train", *map(str, args)], env=env, cwd=REPO, text=True,
                            capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 1 and "did not all start within 3 s" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_batch_that_does_not_split_over_the_workers_is_one_line(photos, tmp_path):
    with started(tmp_path, ["--data", photos, "--runs", tmp_path / "runs", "--name", "odd", *TINY, "--steps", "1",
                            "--batch-size", "5"]) as procs:
        results = finished(tmp_path, procs)
    for code, output in results:
        assert code == 1 and "--batch-size 5 does not split evenly over 2 replicas" in output, output[-2000:]
