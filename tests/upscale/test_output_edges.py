"""The output rules at their edges (jobs.py, batch.py, files.py, cli/upscale.py): a file where a folder should be,
inputs given twice, earlier outputs under another name, -o against --format, suffixes, and missing inputs."""

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.upscale import files
from tests.conftest import photo_array

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("flag", [[], ["--skip-existing"], ["--overwrite"]])
def test_a_file_where_the_output_folder_should_be_fails_and_is_never_skipped(model_path, rgb_file, tmp_path, flag):
    (tmp_path / "e").write_bytes(b"a file")
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "e" / "x.png", *flag)
    assert result.exit_code == 1, result.output
    assert "is a file, not a folder" in result.output and "exists" not in result.output
    assert "0 skipped, 1 failed" in result.output and (tmp_path / "e").read_bytes() == b"a file"


def test_in_a_mirrored_tree_a_file_in_the_way_fails_that_job_only(model_path, tmp_path):
    src, out = tmp_path / "tree", tmp_path / "mirror"
    (src / "a").mkdir(parents=True)
    Image.fromarray(photo_array(5, 5)).save(src / "a" / "p.png")
    Image.fromarray(photo_array(5, 5)).save(src / "q.png")
    out.mkdir()
    (out / "a").write_bytes(b"in the way")
    result = upscale(src, "--model", model_path, "-o", out, "--skip-existing", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.exit_code == 1
    assert sorted(r["status"] for r in records) == ["done", "failed"]
    assert names(out) == ["a", "q_x4.png"]


def test_a_write_under_a_file_says_so_and_not_that_the_output_exists(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        files.write_atomic(b"data", tmp_path / "f" / "sub" / "x.png", overwrite=False)


def test_the_same_file_given_twice_is_upscaled_once(model_path, rgb_file, tmp_path):
    spelt_again = rgb_file.parent / ".." / rgb_file.parent.name / rgb_file.name
    result = upscale(rgb_file, spelt_again, rgb_file.parent, "--model", model_path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "1 done, 0 skipped, 0 failed" in result.output
    assert names(tmp_path / "out") == ["photo_x4.png"]


def test_two_files_that_clash_name_each_other(model_path, tmp_path):
    for ext in ("png", "bmp"):
        Image.fromarray(photo_array(5, 5)).save(tmp_path / f"rgb.{ext}")
    result = upscale(tmp_path, "--model", model_path, "-o", tmp_path / "out", "--format", "png")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "same output" in line]
    assert len(lines) == 2 and "rgb.bmp" in lines[0] and "rgb.png" in lines[0] and "rgb.png" in lines[1]


@pytest.mark.parametrize("second_run", [["--format", "jpg"], ["--outscale", "2"], ["--suffix", "_big"]])
def test_a_rerun_with_other_naming_options_leaves_earlier_outputs_alone(model_path, tmp_path, second_run):
    Image.fromarray(photo_array(6, 7)).save(tmp_path / "a.png")
    assert upscale(tmp_path, "--model", model_path, "-q").exit_code == 0
    result = upscale(tmp_path, "--model", model_path, *second_run)
    assert result.exit_code == 0, result.output
    assert "1 done" in result.output and "1 other files in folders ignored" in result.output
    assert len(names(tmp_path)) == 3 and not any("_x4_" in n or "_x4_x" in n for n in names(tmp_path))


def test_an_image_whose_name_only_looks_like_an_output_is_still_an_input(model_path, tmp_path):
    Image.fromarray(photo_array(6, 7)).save(tmp_path / "holiday_x2.png")  # no holiday.* beside it
    result = upscale(tmp_path, "--model", model_path, "-q")
    assert result.exit_code == 0, result.output
    assert names(tmp_path) == ["holiday_x2.png", "holiday_x2_x4.png"]


def test_an_output_name_and_a_format_that_disagree_are_a_usage_error(model_path, rgb_file, tmp_path):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "conf.png", "--format", "jpg")
    assert result.exit_code == 2 and "conf.png" in result.output and "--format" in result.output
    assert not (tmp_path / "conf.png").exists()
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "same.jpeg", "--format", "JPG", "-q")
    assert result.exit_code == 0 and Image.open(tmp_path / "same.jpeg").format == "JPEG"


@pytest.mark.parametrize("suffix", ["../../escape", "/x", "a\\b", ""])
def test_a_suffix_that_is_not_a_plain_name_part_is_refused(model_path, rgb_file, tmp_path, suffix):
    before = names(rgb_file.parent)
    result = upscale(rgb_file, "--model", model_path, "--suffix", suffix)
    assert result.exit_code == 2 and "--suffix" in result.output and "Traceback" not in result.output
    assert names(rgb_file.parent) == before


@pytest.mark.parametrize("where", ["input", "output"])
def test_a_dash_for_stdin_or_stdout_is_refused_in_one_line(model_path, rgb_file, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    args = ["-", "-o", "out"] if where == "input" else [rgb_file, "-o", "-"]
    result = upscale(*args, "--model", model_path)
    assert result.exit_code == 2 and "standard" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "-").exists() and not (tmp_path / "out").exists()


def test_an_existing_file_without_image_suffix_as_output_is_explained(model_path, rgb_file, tmp_path):
    (tmp_path / "notes").write_text("keep")
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "notes")
    assert result.exit_code == 2 and "existing file" in result.output and "''" not in result.output
    assert (tmp_path / "notes").read_text() == "keep"


def test_a_missing_input_among_others_fails_alone(model_path, rgb_file, tmp_path):
    result = upscale(tmp_path / "nope.png", rgb_file, "--model", model_path, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["status"] for r in records) == ["done", "failed"]
    assert "nope.png" in result.output and "no such file" in result.output
    assert names(tmp_path / "out") == ["photo_x4.png"]


def test_a_result_too_big_for_memory_is_refused_before_any_work(model_path, rgb_file, tmp_path, monkeypatch):
    from srgan_cli.upscale import inference

    ran = []
    monkeypatch.setattr(inference, "measured_available_memory", lambda: 10 << 20)  # 10 MB free
    monkeypatch.setattr(inference.Upscaler, "upscale_array", lambda *a, **k: ran.append(1))
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "huge.png", "--outscale", "200")
    assert result.exit_code == 1 and not ran and not (tmp_path / "huge.png").exists()
    assert "out of memory" in result.output and "GB of memory free" in result.output and "200x needs" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("free", [10 << 20, None], ids=["fits", "system-does-not-say"])
def test_a_result_that_fits_or_whose_room_is_unknown_is_not_refused(model_path, rgb_file, tmp_path, monkeypatch,
                                                                    free):
    from srgan_cli.upscale import inference

    monkeypatch.setattr(inference, "measured_available_memory", lambda: free)
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "fine.png", "--outscale", "8", "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "fine.png").size == (240, 168)


def test_with_an_output_folder_names_that_look_like_outputs_stay_inputs(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("IMG.png", "IMG_x2.png", "scan.png", "scan_x300.png"):
        Image.fromarray(photo_array(5, 5)).save(src / name)
    result = upscale(src, "--model", model_path, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert names(tmp_path / "out") == ["IMG_x2_x4.png", "IMG_x4.png", "scan_x300_x4.png", "scan_x4.png"]
    result = upscale(src, "--model", model_path, "-q")  # beside the photos: only scales up to 16 are outputs
    assert "scan_x300_x4.png" in names(src) and "IMG_x2_x4.png" not in names(src)


def test_a_missing_input_has_no_output_in_its_json_line_and_all_missing_are_named(model_path, rgb_file, tmp_path):
    result = upscale(tmp_path / "gone.png", rgb_file, "--model", model_path, "-o", tmp_path / "out", "--json")
    failed = [json.loads(line) for line in result.stdout.splitlines() if '"failed"' in line]
    assert [(r["input"].endswith("gone.png"), r["output"]) for r in failed] == [(True, "")]
    result = upscale(tmp_path / "a.png", tmp_path / "b.png", "--model", model_path)
    assert result.exit_code == 2 and "a.png" in result.output and "b.png" in result.output
