"""JPEG quality estimation (upscale/jpeg_quality.py) and the note `srgan upscale` prints when a model trained on clean
photos meets compressed JPEGs."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.upscale.jpeg_quality import DAMAGING_QUALITY, STANDARD_LUMA, jpeg_quality, quality_of_table
from tests.conftest import SRGAN_META, photo_array
from tests.tiny_models import make_sr_model

runner = CliRunner()


def _jpeg(path, quality):
    Image.fromarray(photo_array(24, 32)).save(path, "JPEG", quality=quality)
    return path


@pytest.mark.parametrize("quality", [5, 30, 49, 50, 51, 70, 85, 90, 95, 100])
def test_the_quality_pillow_wrote_is_read_back(tmp_path, quality):
    assert jpeg_quality(_jpeg(tmp_path / "a.jpg", quality)) == quality


def test_other_files_have_no_quality(tmp_path, rgb_file):
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    assert jpeg_quality(rgb_file) is None and jpeg_quality(tmp_path / "junk.jpg") is None
    assert jpeg_quality(tmp_path / "missing.jpg") is None


def test_a_camera_table_gets_the_nearest_ijg_quality():
    camera = [value + 1 for value in STANDARD_LUMA]  # a shade coarser than IJG's quality 50, not an IJG table
    assert quality_of_table(camera) in (47, 48, 49)


@pytest.fixture(scope="module")
def clean_model(tmp_path_factory):
    return make_sr_model(tmp_path_factory.mktemp("m") / "clean.onnx", depth=1, kernel=3,
                         metadata={**SRGAN_META, "degradation": "bicubic"})


def _upscale(*args):
    return runner.invoke(app, ["upscale", *map(str, args)])


def test_a_compressed_jpeg_gets_one_note_naming_the_models_for_it(clean_model, tmp_path):
    web, fine = _jpeg(tmp_path / "web.jpg", 60), _jpeg(tmp_path / "fine.jpg", 95)
    result = _upscale(web, fine, "--model", clean_model, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.output.count("note:") == 1 and "1 of the 2 photos to do is a JPEG" in result.output
    assert f"{web}: about 60" in result.output and "--model srresnet_x4_real" in result.output


def test_the_note_names_the_photo_and_counts_right(clean_model, tmp_path):
    (tmp_path / "in" / "a").mkdir(parents=True), (tmp_path / "in" / "b").mkdir()
    photos = [_jpeg(tmp_path / "in" / "a" / "IMG_1.jpg", 50), _jpeg(tmp_path / "in" / "b" / "IMG_1.jpg", 60)]
    both = _upscale(tmp_path / "in", "--model", clean_model, "-o", tmp_path / "out")
    assert "all 2 photos to do are JPEGs" in both.output and f"{photos[0]}: about 50" in both.output, both.output
    one = _upscale(photos[1], "--model", clean_model, "-o", tmp_path / "one.png")
    assert f"note: {photos[1]} is a JPEG compressed at quality 60 or so" in one.output, one.output


def test_camera_jpegs_with_a_picture_index_are_read_too(tmp_path):
    frames = [Image.fromarray(photo_array(24, 32, seed=seed)) for seed in (0, 1)]
    frames[0].save(tmp_path / "cam.jpg", "MPO", save_all=True, append_images=frames[1:], quality=60)
    assert Image.open(tmp_path / "cam.jpg").format == "MPO" and jpeg_quality(tmp_path / "cam.jpg") == 60


@pytest.mark.parametrize("quality,metadata,quiet", [
    (DAMAGING_QUALITY + 5, {"degradation": "bicubic"}, False),  # lightly compressed: the clean model is right
    (60, {"degradation": "realistic"}, False),  # a model that learnt damaged inputs
    (60, {}, False),  # no word on what it learnt
    (60, {"degradation": "bicubic"}, True),  # -q
])
def test_no_note_where_it_would_not_help(tmp_path, quality, metadata, quiet):
    model = make_sr_model(tmp_path / "m.onnx", depth=1, kernel=3, metadata={**SRGAN_META, **metadata})
    result = _upscale(_jpeg(tmp_path / "a.jpg", quality), "--model", model, "-o", tmp_path / "a.png",
                      *(["-q"] if quiet else []))
    assert result.exit_code == 0 and "note:" not in result.output, result.output
