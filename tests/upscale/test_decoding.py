"""Files decoders and encoders choke on (tiff.py, imaging.py, formats.py): every TIFF layout tifffile reads, damaged
ancillary PNG chunks, WebP's size limit, EXIF too long for JPEG. One line for the file, the batch goes on."""

import io
import struct
import zlib

import numpy as np
import png
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import SrganError
from srgan_cli.upscale import formats, imaging
from tests.conftest import photo_array

runner = CliRunner()
RGB16 = photo_array(9, 11, 3, dtype=np.uint16)
RGBA16 = photo_array(9, 11, 4, dtype=np.uint16, seed=1)
GRAY16 = photo_array(9, 11, 1, dtype=np.uint16, seed=2)[..., 0]
RGB8 = photo_array(9, 11, 3, seed=3)

# name -> (tifffile.imwrite arguments, the HxWxC pixels srgan must decode, alpha last)
LAYOUTS = {
    "planar 16-bit RGB": (dict(data=np.moveaxis(RGB16, 2, 0), photometric="rgb", planarconfig="separate"), RGB16),
    "planar 16-bit RGBA": (dict(data=np.moveaxis(RGBA16, 2, 0), photometric="rgb", planarconfig="separate",
                                extrasamples=["unassalpha"]), RGBA16),
    "planar 8-bit RGB": (dict(data=np.moveaxis(RGB8, 2, 0), photometric="rgb", planarconfig="separate"), RGB8),
    "big-endian 16-bit RGB": (dict(data=RGB16, photometric="rgb", byteorder=">"), RGB16),
    "16-bit min-is-white": (dict(data=65535 - GRAY16, photometric="miniswhite"), GRAY16[..., None]),
    "16-bit gray + alpha": (dict(data=np.dstack([GRAY16, GRAY16[::-1]]), photometric="minisblack",
                                 extrasamples=["unassalpha"]), np.dstack([GRAY16, GRAY16[::-1]])),
    "tiled 16-bit RGB": (dict(data=np.tile(RGB16, (4, 4, 1)), photometric="rgb", tile=(16, 16)),
                         np.tile(RGB16, (4, 4, 1))),
    "16-bit RGB + unspecified extra": (dict(data=np.dstack([RGB16, GRAY16]), photometric="rgb",
                                            extrasamples=["unspecified"]), RGB16),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_tiff_layout_tifffile_reads_is_decoded_exactly(tmp_path, layout):
    arguments, expected = LAYOUTS[layout]
    tifffile.imwrite(tmp_path / "in.tif", **arguments)
    photo = imaging.read_photo(tmp_path / "in.tif")
    assert formats.stack_alpha(photo).dtype == expected.dtype
    np.testing.assert_array_equal(formats.stack_alpha(photo), expected)


@pytest.mark.parametrize("data,words", [(RGB16.astype(np.float32) / 65535, "floating-point"),
                                        (GRAY16.astype(np.int16), "signed"),
                                        (RGB16.astype(np.uint32) * 9, "32-bit")])
def test_tiff_layouts_srgan_cannot_use_are_refused_in_one_line(tmp_path, data, words):
    tifffile.imwrite(tmp_path / "odd.tif", data, photometric="rgb" if data.ndim == 3 else "minisblack")
    with pytest.raises(SrganError, match=words) as caught:
        imaging.read_photo(tmp_path / "odd.tif")
    assert "\n" not in str(caught.value)


def test_a_planar_16bit_tiff_is_upscaled_at_16_bits_like_its_contiguous_twin(model_path, tmp_path):
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(RGB16, 2, 0), photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "contig.tif", RGB16, photometric="rgb")
    for name in ("planar", "contig"):
        result = runner.invoke(app, ["upscale", str(tmp_path / f"{name}.tif"), "--model", str(model_path), "-q"])
        assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "planar_x4.tif")
    assert out.shape == (36, 44, 3) and out.dtype == np.uint16
    np.testing.assert_array_equal(out, tifffile.imread(tmp_path / "contig_x4.tif"))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16_with_a_bad_sbit_chunk():
    raw = io.BytesIO()
    png.Writer(11, 9, greyscale=False, bitdepth=16).write(raw, RGB16.reshape(9, 33))
    data = raw.getvalue()
    return data[:33] + _chunk(b"sBIT", b"\x08") + data[33:]  # after the 8-byte signature and 25-byte IHDR


def test_a_damaged_ancillary_chunk_in_a_16bit_png_fails_that_file_in_one_line(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "bad.png").write_bytes(_png16_with_a_bad_sbit_chunk())
    Image.fromarray(photo_array(6, 6)).save(src / "good.png")
    with pytest.raises(SrganError, match="sBIT"):
        imaging.read_photo(src / "bad.png")
    result = runner.invoke(app, ["upscale", str(src), "--model", str(model_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert sum("bad.png" in line for line in result.output.splitlines()) == 1
    assert "1 done, 0 skipped, 1 failed" in result.output


def test_an_output_over_webps_size_limit_fails_that_file_and_the_batch_goes_on(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo_array(2, 4100)).save(src / "wide.png")
    Image.fromarray(photo_array(6, 6)).save(src / "small.png")
    result = runner.invoke(app, ["upscale", str(src), "--model", str(model_path), "-o", str(tmp_path / "out"),
                                 "--format", "webp"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert sum("wide.png" in line and "16383" in line for line in result.output.splitlines()) == 1
    assert "1 done, 0 skipped, 1 failed" in result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small_x4.webp"]


def test_exif_too_long_for_jpeg_is_dropped_with_a_note():
    photo = imaging.Photo(photo_array(8, 8), exif=b"Exif\x00\x00" + bytes(70_000))
    data, notes = formats.encode_photo(photo, "jpg")
    assert Image.open(io.BytesIO(data)).size == (8, 8)
    assert any("EXIF" in note for note in notes)
