"""The Dask recipe (examples/dask_upscale.py) on local two-worker clusters on 127.0.0.1, and on an object store."""

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan_cli.upscale.inference import Upscaler, UpscaleSettings
from tests.conftest import SRGAN_META, load_file_module, photo_array
from tests.tiny_models import make_sr_model

distributed = pytest.importorskip("distributed")  # the `dask` extra
fsspec = pytest.importorskip("fsspec")
REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "dask_upscale.py"
TIMEOUT = 120  # seconds one run of the recipe may take on a loaded machine (it takes about one)


@pytest.fixture(scope="module")
def recipe():
    yield load_file_module(RECIPE, "dask_upscale")
    sys.modules.pop("dask_upscale", None)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, everything on 127.0.0.1."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as local, distributed.Client(local) as client:
        yield client


@pytest.fixture
def lake(tmp_path):
    """A small photo tree: RGB and RGBA PNGs, a grey JPEG in a sub-folder, a broken file, a hidden one, a text file."""
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    Image.fromarray(photo_array(20, 30, seed=1)).save(root / "a.png")
    Image.fromarray(photo_array(18, 22, channels=4, seed=2)).save(root / "b.PNG")
    Image.fromarray(photo_array(24, 16, channels=1, seed=3)[..., 0]).save(root / "trip" / "c.jpg", quality=90)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    (root / ".hidden.png").write_bytes(b"")
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    model = make_sr_model(tmp_path_factory.mktemp("model") / "tiny.onnx", metadata=SRGAN_META)
    return UpscaleSettings(model=str(model), device="cpu", tile=16, threads=1)


@contextmanager
def bounded(seconds=TIMEOUT):
    """Fail the test instead of hanging when the cluster never answers (SIGALRM interrupts the client's wait)."""
    def expire(*_):
        raise TimeoutError(f"the recipe did not finish within {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(recipe, client, source, target, settings, **output):
    options = recipe.Output(**output)
    records = []
    with bounded():
        counts = recipe.run(client, recipe.list_jobs(str(source), str(target), options), options, settings, chunk=1,
                            report=records.append)
    return counts, {Path(r["input"]).name: r for r in records}


def test_two_workers_upscale_a_tree_and_a_rerun_skips_what_exists(recipe, cluster, lake, tmp_path, settings):
    out = tmp_path / "out"
    counts, records = run(recipe, cluster, lake, out, settings)
    assert counts == {"done": 3, "failed": 1} and set(records) == {"a.png", "b.PNG", "c.jpg", "broken.jpg"}
    assert records["broken.jpg"]["reason"] == "not an image" and records["broken.jpg"]["status"] == "failed"
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records.values())
    assert json.loads(json.dumps(records))  # every record is one JSON line
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a_x4.png", "b_x4.PNG", "trip/c_x4.jpg"]  # no temporary file left behind
    assert records["a.png"]["size"] == [120, 80] and records["a.png"]["input_size"] == [30, 20]
    reference = np.asarray(Upscaler.from_settings(settings).upscale(Image.open(lake / "a.png")))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a_x4.png")), reference)
    assert Image.open(out / "b_x4.PNG").mode == "RGBA" and Image.open(out / "trip" / "c_x4.jpg").mode == "L"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    counts, records = run(recipe, cluster, lake, out, settings, skip_existing=True)
    assert counts == {"skipped": 3, "failed": 1} and records["a.png"]["reason"] == "output exists"
    counts, records = run(recipe, cluster, lake, out, settings)  # neither --skip-existing nor --overwrite
    assert counts == {"failed": 4} and records["a.png"]["reason"].startswith("output exists (use --overwrite")
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}  # nothing replaced


def test_a_model_that_does_not_open_fails_every_file_in_one_line(recipe, cluster, lake, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    counts, records = run(recipe, cluster, lake, tmp_path / "out", UpscaleSettings(model=str(broken), device="cpu"))
    assert counts == {"failed": 4}
    assert all(r["reason"].startswith("cannot open the model on tcp://127.0.0.1:") for r in records.values())


def test_an_object_store_is_read_and_written_through_fsspec(recipe, lake, settings):
    memory = fsspec.filesystem("memory")
    for path in lake.rglob("*"):
        if path.is_file():
            memory.pipe_file(f"/lake/{path.relative_to(lake).as_posix()}", path.read_bytes())
    memory.pipe_file("/lake/out/a_x4.png", b"written meanwhile")  # a write that never replaces an object
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address="127.0.0.1:0") as local, distributed.Client(local) as client:
        counts, records = run(recipe, client, "memory://lake", "memory://lake/out", settings)
    assert counts == {"done": 2, "failed": 2} and records["a.png"]["reason"].startswith("output exists")
    assert memory.cat_file("/lake/out/a_x4.png") == b"written meanwhile"
    assert Image.open(memory.open("/lake/out/trip/c_x4.jpg")).size == (64, 96)


def test_the_readme_command_runs_on_two_local_workers(lake, tmp_path):
    text = (REPO / "README.md").read_text()
    command = next(line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()
                   if line.startswith("python examples/dask_upscale.py"))
    (tmp_path / "examples").symlink_to(REPO / "examples")
    assert lake == tmp_path / "photos"  # the README's photos/
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    for expected in ("3 done, 0 skipped, 1 failed", "0 done, 3 skipped, 1 failed"):  # a re-run skips what exists
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True, capture_output=True,
                                timeout=TIMEOUT)
        assert result.returncode == 1 and expected in result.stderr, result.stderr[-2000:]
        assert "failed: file://" in result.stderr and "broken.jpg: not an image" in result.stderr
        assert "Traceback" not in result.stderr
    written = sorted(p.relative_to(tmp_path / "photos_x4").as_posix() for p in (tmp_path / "photos_x4").rglob("*.*"))
    assert written == ["a_x4.png", "b_x4.PNG", "trip/c_x4.jpg"]
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {r["worker"].split(":")[1] for r in records if "worker" in r} == {"//127.0.0.1"}
