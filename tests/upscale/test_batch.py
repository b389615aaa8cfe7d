"""`srgan upscale` as scripts use it (batch.py): naming, folders, bad files, resumable batches, exit codes."""

import json

from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from tests.conftest import photo_array

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def one_line_error(result):
    assert "Traceback" not in result.output
    return result.output


def test_single_file_default_name_beside_input(model_path, rgb_file):
    result = upscale(rgb_file, "--model", model_path, "-q")
    assert result.exit_code == 0, result.output
    out = rgb_file.with_name("photo_x4.png")
    assert Image.open(out).size == (120, 84)


def test_single_file_to_named_output_with_format_from_extension(model_path, rgb_file, tmp_path):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "big.jpg", "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "big.jpg").format == "JPEG"


def test_folder_tree_is_mirrored_and_other_files_counted(model_path, tmp_path):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(photo_array(8, 9)).save(src / "a.PNG")
    Image.fromarray(photo_array(8, 9)).save(src / "sub" / "b.jpeg")
    Image.fromarray(photo_array(8, 9)).save(src / "sub" / "deeper" / "c.webp")
    (src / "notes.txt").write_text("not an image")
    result = upscale(src, "--model", model_path, "-o", tmp_path / "out", "--format", "png")
    assert result.exit_code == 0, result.output
    for rel in ("a_x4.PNG", "sub/b_x4.png", "sub/deeper/c_x4.png"):
        assert Image.open(tmp_path / "out" / rel).size == (36, 32)
    assert "3 done" in result.output and "1 other files" in result.output


def test_bad_files_fail_alone_and_leave_nothing_partial(model_path, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(photo_array(8, 8)).save(src / "good.png")
    (src / "empty.png").write_bytes(b"")
    (src / "text.jpg").write_text("hello")
    good = (src / "good.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    Image.fromarray(photo_array(60, 60)).save(src / "bomb.png")
    result = upscale(src, "--model", model_path, "-o", out, "--max-pixels", 2000)
    assert result.exit_code == 1
    output = one_line_error(result)
    for name in ("empty.png", "text.jpg", "truncated.png", "bomb.png"):
        assert sum(name in line for line in output.splitlines()) == 1, output
    assert "1 done, 0 skipped, 4 failed" in output
    assert sorted(p.name for p in out.iterdir()) == ["good_x4.png"]


def test_existing_outputs_need_overwrite_or_skip(model_path, rgb_file, tmp_path):
    target = tmp_path / "o.png"
    target.write_bytes(b"keep me")
    result = upscale(rgb_file, "--model", model_path, "-o", target)
    assert result.exit_code == 1 and "exists" in result.output and target.read_bytes() == b"keep me"
    result = upscale(rgb_file, "--model", model_path, "-o", target, "--skip-existing")
    assert result.exit_code == 0 and "1 skipped" in result.output and target.read_bytes() == b"keep me"
    result = upscale(rgb_file, "--model", model_path, "-o", target, "--overwrite")
    assert result.exit_code == 0 and Image.open(target).size == (120, 84)


def test_output_equal_to_input_is_refused(model_path, rgb_file):
    before = rgb_file.read_bytes()
    result = upscale(rgb_file, "--model", model_path, "-o", rgb_file, "--overwrite")
    assert result.exit_code == 1 and "input" in result.output
    assert rgb_file.read_bytes() == before


def test_json_lines_for_automation(model_path, rgb_file, tmp_path):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "j.png", "--json")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["status"] == "done" and record["output"].endswith("j.png")
    assert record["input_size"] == [30, 21] and record["size"] == [120, 84]


def test_outscale_resizes_the_result(model_path, rgb_file, tmp_path):
    result = upscale(rgb_file, "--model", model_path, "-o", tmp_path / "s.png", "--outscale", "2.5", "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "s.png").size == (75, 52)


def test_shards_are_disjoint_and_complete(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):
        Image.fromarray(photo_array(4, 4, seed=i)).save(src / f"{i}.png")
    for k in (1, 2, 3):
        result = upscale(src, "--model", model_path, "-o", tmp_path / "out", "--shard", f"{k}/3", "-q")
        assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").iterdir())) == 12
    assert upscale(src, "--model", model_path, "--shard", "4/3").exit_code == 2


def test_missing_input_and_bad_options_are_usage_errors(model_path, rgb_file, tmp_path):
    assert upscale(tmp_path / "nope.png", "--model", model_path).exit_code == 2
    assert upscale(rgb_file, "--model", model_path, "--tile", "big").exit_code == 2
    assert upscale(rgb_file, "--model", model_path, "--device", "tpu").exit_code == 2
    assert upscale(rgb_file, "--model", model_path, "--overwrite", "--skip-existing").exit_code == 2
















def test_rerun_on_a_folder_does_not_upscale_its_own_outputs(model_path, tmp_path):
    Image.fromarray(photo_array(6, 7)).save(tmp_path / "a.png")
    assert upscale(tmp_path, "--model", model_path, "-q").exit_code == 0
    result = upscale(tmp_path, "--model", model_path, "--skip-existing")
    assert result.exit_code == 0 and "0 done, 1 skipped" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_x4.png"]
