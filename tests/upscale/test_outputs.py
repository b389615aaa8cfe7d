"""Where outputs go (jobs.py, files.py, batch.py): re-runs never nest or clobber, names follow the real scale, output
names srgan cannot write are refused, stale temporary files of killed runs are cleaned up."""

import json
import os
import socket
import subprocess
import sys
import time
import zlib

import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.upscale import batch
from srgan_cli.upscale.inference import Upscaler
from tests.conftest import photo_array
from tests.upscale.slow_cli import start_slow_upscale

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_reruns_spelt_differently_never_take_their_outputs_as_inputs(model_path, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo_array(6, 7)).save(photos / "a.png")
    (tmp_path / "link").symlink_to(photos)
    monkeypatch.chdir(tmp_path)
    assert upscale("photos", "--model", model_path, "-o", photos / "out", "-q").exit_code == 0
    for source, out in (("photos", "photos/out"), (photos, "photos/out"), ("photos", photos / "out"),
                        ("photos/../photos", "link/out"), ("link", "photos/out")):
        result = upscale(source, "--model", model_path, "-o", out, "--skip-existing")
        assert result.exit_code == 0, (source, out, result.output)
        assert "0 done, 1 skipped, 0 failed" in result.output, (source, out, result.output)
    assert tree(photos) == ["a.png", "out", "out/a_x4.png"]


def test_files_under_the_output_tree_are_never_inputs(model_path, tmp_path):
    photos = tmp_path / "photos"
    (photos / "out").mkdir(parents=True)
    Image.fromarray(photo_array(6, 7)).save(photos / "out" / "left_over.png")  # no input of this run writes it
    result = upscale(photos, "--model", model_path, "-o", photos / "out")
    assert result.exit_code == 0, result.output
    assert tree(photos) == ["out", "out/left_over.png"]


def test_an_output_that_appears_during_the_run_is_not_replaced(model_path, rgb_file, tmp_path):
    upscaler = Upscaler(model_path, device="cpu")
    target = tmp_path / "o.png"

    def racing_step(photo, on_window):
        target.write_bytes(b"written by someone else meanwhile")
        return upscaler.upscale_photo(photo, on_window)

    for options, status in ((batch.Options(out=target), "failed"), (batch.Options(out=target, skip_existing=True),
                                                                     "skipped")):
        target.unlink(missing_ok=True)
        jobs, _ = batch.collect_jobs([rgb_file], options)
        outcomes = []
        batch.run_batch(jobs, racing_step, options, outcomes.append)
        assert [(o.status, "exists" in o.reason) for o in outcomes] == [(status, True)]
        assert target.read_bytes() == b"written by someone else meanwhile"
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    options = batch.Options(out=target, overwrite=True)
    outcomes = []
    batch.run_batch(batch.collect_jobs([rgb_file], options)[0], racing_step, options, outcomes.append)
    assert outcomes[0].status == "done" and Image.open(target).size == (120, 84)


def test_two_identical_runs_on_one_folder_do_not_both_write_every_file(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(photo_array(24, 24, seed=i)).save(src / f"{i}.png")
    arguments = (src, "-o", tmp_path / "out", "--model", model_path, "--json", "--threads", "1", "--device", "cpu")
    runs = [start_slow_upscale(0.4, *arguments) for _ in range(2)]  # both start before either has written
    done = 0
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=120)
            done += sum(json.loads(line)["status"] == "done" for line in stdout.splitlines())
    finally:
        for run in runs:
            run.kill()
    assert done == 6, stderr
    assert len(list((tmp_path / "out").iterdir())) == 6


def _part_name(name, host, pid):
    return f".{name}.srgan-{host}-{pid}-abc123.part"


def test_stale_temporary_files_of_this_tool_are_removed_and_only_those(model_path, rgb_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    here = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    stale = [_part_name("photo_x4.png", here, dead),  # this machine's, its process is gone
             _part_name("b_x4.png", "0badc0de", 12)]  # another machine's, two hours old
    kept = [_part_name("c_x4.png", here, os.getpid()),  # a live process of this machine is writing it
            _part_name("d_x4.png", "0badc0de", 13),  # another machine's, and recent
            _part_name("e_x4.png", here, dead),  # its process is gone, but it is seconds old
            ".photo_x4.png.k2j4_x.part", ".notes.part", "f.srgan-0badc0de-1-x.part"]  # not ours
    two_hours_ago = time.time() - 2 * 3600
    for name in stale + kept:
        (out / name).write_bytes(b"partial")
        if name not in kept[1:3]:
            os.utime(out / name, (two_hours_ago, two_hours_ago))
    result = upscale(rgb_file, "--model", model_path, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*kept, "photo_x4.png"])
    assert "2 stale temporary files" in result.output


@pytest.mark.parametrize("name", ["out.gif", "big.bmp", "scan.jxl"])
def test_an_output_name_srgan_cannot_write_is_a_usage_error(model_path, rgb_file, tmp_path, name):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / name)
    assert result.exit_code == 2 and name in result.output and "Traceback" not in result.output
    assert not (tmp_path / name).exists()


def test_a_file_name_for_several_inputs_is_a_usage_error(model_path, rgb_file, tmp_path):
    other = tmp_path / "other.png"
    Image.fromarray(photo_array(5, 5)).save(other)
    result = upscale(rgb_file, other, "--model", model_path, "-o", tmp_path / "two.png")
    assert result.exit_code == 2 and "two.png" in result.output
    assert not (tmp_path / "two.png").exists()
    result = upscale(tmp_path, "--model", model_path, "-o", tmp_path / "folder.jpg")
    assert result.exit_code == 2 and not (tmp_path / "folder.jpg").exists()


def test_output_folders_with_dots_and_existing_folders_stay_folders(model_path, rgb_file, tmp_path):
    (tmp_path / "made.png").mkdir()
    assert upscale(rgb_file, "--model", model_path, "-o", tmp_path / "made.png", "-q").exit_code == 0
    assert upscale(rgb_file, "--model", model_path, "-o", tmp_path / "holiday.2024", "-q").exit_code == 0
    assert (tmp_path / "made.png" / "photo_x4.png").is_file()
    assert (tmp_path / "holiday.2024" / "photo_x4.png").is_file()


@pytest.mark.parametrize("given,suffix", [("JPEG", ".jpg"), ("Tif", ".tif"), ("jpeg", ".jpg"), ("PNG", ".png")])
def test_format_names_are_case_insensitive_and_know_jpeg_and_tif(model_path, rgb_file, tmp_path, given, suffix):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "out", "--format", given, "-q")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"photo_x4{suffix}"]


@pytest.mark.parametrize("outscale,name", [("2", "photo_x2.png"), ("2.5", "photo_x2.5.png"), ("4", "photo_x4.png")])
def test_the_default_suffix_follows_the_real_scale(model_path, rgb_file, outscale, name):
    result = upscale(rgb_file, "--model", model_path, "--outscale", outscale, "-q")
    assert result.exit_code == 0, result.output
    assert rgb_file.with_name(name).is_file()


def test_an_explicit_suffix_is_kept(model_path, rgb_file):
    assert upscale(rgb_file, "--model", model_path, "--outscale", "2", "--suffix", "_big", "-q").exit_code == 0
    assert rgb_file.with_name("photo_big.png").is_file()


def test_an_empty_input_folder_warns(model_path, tmp_path):
    (tmp_path / "empty").mkdir()
    result = upscale(tmp_path / "empty", "--model", model_path)
    assert result.exit_code == 0 and "no images" in result.output and "empty" in result.output
