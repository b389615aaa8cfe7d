"""The one table of image formats (formats.py): every row reads back, a new row is all a new format needs."""

import io

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import batch, formats, imaging
from srgan_cli.upscale.formats import WRITE_FORMATS, WriteFormat
from tests.conftest import photo_array


@pytest.mark.parametrize("row", WRITE_FORMATS, ids=lambda row: row.name)
def test_every_row_round_trips_through_its_encoder_for_each_suffix(row, tmp_path):
    pixels = photo_array(12, 10)
    for suffix in row.suffixes:
        assert suffix in formats.READ_SUFFIXES and formats.native_format(suffix.upper()) is row
        for key in (row.name, suffix, suffix.upper(), row.pillow):
            assert formats.find_format(key) is row, key
        assert formats.output_format(f"out{suffix}") is row
        data, notes = formats.encode_photo(imaging.Photo(pixels), row)
        assert Image.open(io.BytesIO(data)).format == row.pillow and notes == []
        (tmp_path / f"out{suffix}").write_bytes(data)
        back = imaging.read_photo(tmp_path / f"out{suffix}")
        assert back.size == (10, 12)
        tolerance = 0 if row.pillow in ("PNG", "TIFF") else 40  # JPEG and WebP are lossy
        assert np.abs(back.color.astype(int) - pixels).max() <= tolerance


def test_names_the_format_table_does_not_know_are_refused():
    with pytest.raises(UsageError, match="png, jpg, webp, tiff"):
        formats.parse_format("gif")
    with pytest.raises(SrganError, match="cannot write 'bmp'"):
        formats.output_format("x.bmp")
    with pytest.raises(SrganError):
        formats.encode_photo(imaging.Photo(photo_array(4, 4)), "GIF")


def test_outputs_keep_the_input_format_and_suffix_else_png(tmp_path):
    for name in ("a.JPEG", "b.tiff", "c.bmp", "d.gif", "e.webp"):
        Image.fromarray(photo_array(6, 6)).convert("RGB").save(tmp_path / name)
    jobs, _ = batch.collect_jobs([tmp_path], batch.Options())
    assert {j.target.name: j.fmt.name for j in jobs} == {
        "a_x4.JPEG": "jpg", "b_x4.tiff": "tiff", "c_x4.png": "png", "d_x4.png": "png", "e_x4.webp": "webp"}
    jobs, _ = batch.collect_jobs([tmp_path], batch.Options(fmt="tiff"))
    assert {j.target.suffix for j in jobs} == {".tif", ".tiff"}  # b.tiff keeps its own spelling


def _encode_bmp(photo, quality, notes):
    buffer = io.BytesIO()
    formats.photo_to_image(formats.to_8bit(photo, notes)).save(buffer, format="BMP")
    return buffer.getvalue()


def test_a_new_row_is_all_a_new_output_format_needs(monkeypatch, model_path, rgb_file, tmp_path):
    monkeypatch.setattr(formats, "WRITE_FORMATS", (*WRITE_FORMATS, WriteFormat("bmp", (".bmp",), "BMP", _encode_bmp)))
    runner = CliRunner()
    result = runner.invoke(app, ["upscale", str(rgb_file), "--model", str(model_path), "-o", str(tmp_path / "o.bmp")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "o.bmp").format == "BMP" and Image.open(tmp_path / "o.bmp").size == (120, 84)
    result = runner.invoke(app, ["upscale", str(rgb_file), "--model", str(model_path), "-o", str(tmp_path / "dir"),
                                 "--format", "bmp", "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "dir" / "photo_x4.bmp").format == "BMP"


def test_an_unknown_format_option_is_a_usage_error(model_path, rgb_file):
    result = CliRunner().invoke(app, ["upscale", str(rgb_file), "--model", str(model_path), "--format", "gif"])
    assert result.exit_code == 2 and "--format gif" in result.output and "Traceback" not in result.output


def test_png_takes_the_fast_rle_strategy_on_photos_and_the_default_on_flat_graphics():
    """Z_RLE writes a photo as small as the default deflate; on flat graphics the default is far smaller."""
    from PIL import ImageDraw

    photo = Image.fromarray(photo_array(192, 256, seed=3))
    noisy = np.clip(np.asarray(photo, np.int16) + np.random.default_rng(0).integers(-6, 7, (192, 256, 3)), 0, 255)
    graphic = Image.new("RGB", (256, 192), (240, 240, 240))
    for i in range(12):
        ImageDraw.Draw(graphic).text((4, 16 * i), "flat text on a flat page " * 2, fill=(0, 0, 0))
    for image, chosen in ((Image.fromarray(noisy.astype(np.uint8)), formats.PNG_RLE), (graphic, {})):
        assert formats.png_options(image) == chosen
        data, _ = formats.encode_photo(imaging.Photo(np.asarray(image)), formats.find_format("png"))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))  # lossless either way
    sizes = [formats._png_size(graphic, options) for options in (formats.PNG_RLE, {})]
    assert sizes[0] > 1.5 * sizes[1]
