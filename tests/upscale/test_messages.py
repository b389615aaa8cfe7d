"""What `srgan upscale` tells the user (console.py, cli/upscale.py): messages printed as written (never as rich
markup), numbers only ASCII digits make, progress that counts only the work left, the tile `auto` picked."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli import console
from srgan_cli.cli import app
from srgan_cli.cli import upscale as upscale_command
from srgan_cli.errors import UsageError
from srgan_cli.upscale.inference import UpscaleSettings
from tests.conftest import photo_array

runner = CliRunner()


def upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


@pytest.mark.parametrize("name", ["IMG_0001 [draft].png", "x[/red].png", "[bold]y.png"])
def test_file_names_that_look_like_markup_are_printed_as_they_are(model_path, tmp_path, name):
    src = tmp_path / "in"
    (src / name).parent.mkdir(parents=True)  # 'x[/red].png': the file red].png in the folder x[
    (src / name).write_bytes(b"not an image")
    Image.fromarray(photo_array(5, 5)).save(src / "fine.png")
    result = upscale(src, "--model", model_path, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert name in result.output and "1 done, 0 skipped, 1 failed" in result.output


def test_error_hints_keep_their_brackets(capsys):
    console.error_line("SSIM needs scikit-image: pip install 'srgan-cli[eval]'")
    console.error_line("pip install 'onnxruntime-gpu[cuda,cudnn]' [/red]")
    err = capsys.readouterr().err
    assert "'srgan-cli[eval]'" in err and "'onnxruntime-gpu[cuda,cudnn]' [/red]" in err


def test_the_cuda_hint_is_printed_whole(model_path, rgb_file):
    result = upscale(rgb_file, "--model", model_path, "--device", "cuda")
    if result.exit_code == 0:
        pytest.skip("CUDA works here")
    assert "'onnxruntime-gpu[cuda,cudnn]'" in result.output


@pytest.mark.parametrize("flag,value", [("--tile", "²"), ("--device", "cuda:²"), ("--tile", "-0")])
def test_digits_python_accepts_but_a_user_never_types_are_usage_errors(model_path, rgb_file, flag, value):
    result = upscale(rgb_file, "--model", model_path, flag, value)
    assert result.exit_code == 2 and "Traceback" not in result.output and flag in result.output
    with pytest.raises(UsageError):
        UpscaleSettings(device="cuda:²")


def test_tile_auto_says_what_it_picked(model_path, rgb_file, tmp_path):
    result = upscale(rgb_file, "--model", model_path, "--tile", "auto", "-o", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    assert "tile: auto" in result.output and "LR px" in result.output
    quiet = upscale(rgb_file, "--model", model_path, "--tile", "auto", "-o", tmp_path / "q.png", "-q")
    assert quiet.output == ""


def test_the_pixel_total_counts_only_the_work_left(model_path, tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, side in (("a.png", 12), ("b.png", 10), ("c.png", 8)):
        Image.fromarray(photo_array(side, side)).save(src / name)
    (src / "d.png").write_bytes(b"broken")
    out.mkdir()
    (out / "a_x4.png").write_bytes(b"done earlier")
    progresses = []

    def keep(*args, **kwargs):
        progresses.append(console.make_progress(True, *args[1:]))
        return progresses[-1]

    monkeypatch.setattr(upscale_command, "make_progress", keep)
    result = upscale(src, "--model", model_path, "-o", out, "--skip-existing")
    assert result.exit_code == 1 and "2 done, 1 skipped, 1 failed" in result.output
    pixels = next(task for task in progresses[0].tasks if task.description == "LR pixels")
    assert pixels.total == pixels.completed == 10 * 10 + 8 * 8


class SlowTask:
    """What the rate column reads of a rich Task: 8000 LR pixels in 2 s."""

    fields: dict = {}
    completed, elapsed, speed = 8000, 2.0, 4000.0


def test_the_rate_column_shows_slow_rates():
    column = console.RateColumn("MP/s", 1e-6)
    assert column.render(SlowTask()).plain == "0.004 MP/s"
    no_recent_samples = SlowTask()
    no_recent_samples.speed = None  # rich has too few samples in its window: the average since the start
    assert column.render(no_recent_samples).plain == "0.004 MP/s"
    assert console.RateColumn("steps/s").render(SlowTask()).plain == "4000 steps/s"
