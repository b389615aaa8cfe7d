"""Every image mode a user meets survives `upscale` (imaging.py, formats.py): size x4, mode and bit depth kept,
alpha, EXIF, ICC, DPI; the folder walker; atomic writes."""

import io
import os

import numpy as np
import png
import pytest
import tifffile
from PIL import Image, ImageCms

from srgan_cli.errors import SrganError
from srgan_cli.upscale import formats, imaging
from srgan_cli.upscale.inference import Upscaler
from tests.conftest import photo_array


@pytest.fixture(scope="module")
def upscaler(model_path):
    return Upscaler(model_path, device="cpu", tile=16, tile_pad=4)


def roundtrip(upscaler, src, dst):
    photo = upscaler.upscale_photo(imaging.read_photo(src))
    data, notes = formats.encode_photo(photo, formats.output_format(dst))
    imaging.write_atomic(data, dst)
    return photo, notes


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "1"])
def test_pillow_modes_keep_mode_and_size(upscaler, tmp_path, mode):
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photo_array(13, 9, 4)).convert(mode).save(src)
    roundtrip(upscaler, src, dst)
    out = Image.open(dst)
    assert out.size == (36, 52)
    assert out.mode == {"1": "L"}.get(mode, mode)


def test_palette_and_cmyk_are_converted_with_a_note(upscaler, tmp_path):
    Image.fromarray(photo_array(10, 12)).convert("P").save(tmp_path / "p.png")
    Image.fromarray(photo_array(10, 12)).convert("CMYK").save(tmp_path / "c.jpg")
    for name, mode in (("p.png", "RGB"), ("c.jpg", "RGB")):
        photo, _ = roundtrip(upscaler, tmp_path / name, tmp_path / f"out_{name}")
        assert "converted" in " ".join(photo.notes)
        assert Image.open(tmp_path / f"out_{name}").mode == mode


def test_gif_uses_the_first_frame(upscaler, tmp_path):
    frames = [Image.fromarray(photo_array(8, 8, seed=s)).convert("P") for s in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    photo, _ = roundtrip(upscaler, tmp_path / "a.gif", tmp_path / "a.png")
    assert "first frame of 3" in photo.notes[0]


def test_16bit_gray_png_stays_16bit_even_when_dark(upscaler, tmp_path):
    dark = (photo_array(12, 10, 1, dtype=np.uint16)[..., 0] // 64)  # values below 1024: must not be taken as 8-bit
    Image.fromarray(dark).save(tmp_path / "g16.png")
    roundtrip(upscaler, tmp_path / "g16.png", tmp_path / "o16.png")
    out = np.asarray(Image.open(tmp_path / "o16.png"))
    assert Image.open(tmp_path / "o16.png").mode == "I;16" and out.shape == (48, 40)
    assert abs(out.mean() - dark.mean()) < 0.2 * dark.mean()  # an 8-bit misreading would be off by 257x


def test_16bit_rgb_png_is_read_and_written_at_16_bits(upscaler, tmp_path):
    array = photo_array(9, 11, 3, dtype=np.uint16)
    with open(tmp_path / "c16.png", "wb") as f:
        png.Writer(11, 9, greyscale=False, bitdepth=16).write(f, array.reshape(9, 33))
    photo = imaging.read_photo(tmp_path / "c16.png")
    assert photo.color.dtype == np.uint16 and np.array_equal(photo.color, array)
    roundtrip(upscaler, tmp_path / "c16.png", tmp_path / "o16.png")
    width, height, rows, info = png.Reader(filename=str(tmp_path / "o16.png")).asDirect()
    assert (width, height, info["bitdepth"], info["planes"]) == (44, 36, 16, 3)
    assert np.asarray(list(rows)).max() > 255


def test_16bit_rgba_tiff_roundtrip(upscaler, tmp_path):
    array = photo_array(9, 11, 4, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", array, photometric="rgb", extrasamples=["unassalpha"])
    roundtrip(upscaler, tmp_path / "c.tif", tmp_path / "o.tif")
    out = tifffile.imread(tmp_path / "o.tif")
    assert out.shape == (36, 44, 4) and out.dtype == np.uint16


def test_exif_rotation_is_applied_and_reset(upscaler, tmp_path):
    array = photo_array(10, 20)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[imaging.ORIENTATION] = 6  # stored landscape, shown rotated 90 degrees clockwise
    image.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    roundtrip(upscaler, tmp_path / "r.jpg", tmp_path / "o.jpg")
    out = Image.open(tmp_path / "o.jpg")
    assert out.size == (40, 80)
    assert out.getexif().get(imaging.ORIENTATION) == 1


def test_icc_dpi_and_exif_are_carried(upscaler, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.fromarray(photo_array(10, 10))
    exif = image.getexif()
    exif[0x010F] = "TestCam"  # Make
    for ext in ("png", "jpg", "webp", "tif"):
        src, dst = tmp_path / f"i.{ext}", tmp_path / f"o.{ext}"
        image.save(src, icc_profile=icc, dpi=(300, 300), exif=exif.tobytes())
        roundtrip(upscaler, src, dst)
        out = Image.open(dst)
        assert out.info.get("icc_profile") == icc, ext
        if ext in ("png", "jpg", "tif"):
            assert round(out.info["dpi"][0]) == 300, ext
        assert out.getexif().get(0x010F) == "TestCam", ext


def test_16bit_png_keeps_icc(upscaler, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = imaging.Photo(photo_array(6, 6, 3, dtype=np.uint16), icc=icc, dpi=(72.0, 72.0))
    data, _ = formats.encode_photo(upscaler.upscale_photo(photo), "PNG")
    out = Image.open(io.BytesIO(data))
    assert out.info.get("icc_profile") == icc


def test_transparent_edges_get_no_dark_halo(upscaler, tmp_path):
    yy, xx = np.mgrid[0:32, 0:32]
    inside = (yy - 16) ** 2 + (xx - 16) ** 2 < 100
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[inside] = (255, 255, 255, 255)  # white disc, invisible pixels are black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "disc.png")
    roundtrip(upscaler, tmp_path / "disc.png", tmp_path / "big.png")
    out = np.asarray(Image.open(tmp_path / "big.png"))
    visible = out[..., 3] > 128
    assert visible.sum() > 0.8 * inside.sum() * 16
    assert out[visible][:, :3].min() >= 240, "dark fringe at the transparent edge"


def test_jpeg_output_of_rgba_is_flattened_with_a_note(upscaler, tmp_path):
    Image.fromarray(photo_array(8, 8, 4), "RGBA").save(tmp_path / "a.png")
    _, notes = roundtrip(upscaler, tmp_path / "a.png", tmp_path / "a.jpg")
    assert Image.open(tmp_path / "a.jpg").mode == "RGB" and "alpha" in notes[0]


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        imaging.write_atomic(b"data", tmp_path / "o.png")
    assert list(tmp_path.iterdir()) == []


def test_the_folder_walker_finds_images_in_any_case_sorted_and_counts_the_rest(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    for name in ("z.PNG", "a.jpeg", "b/x.Tif", "b/c/y.gif", "notes.txt", "b/c/raw.cr2", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    images, others = imaging.scan_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["a.jpeg", "b/c/y.gif", "b/x.Tif", "z.PNG"]
    assert others == 2  # notes.txt and raw.cr2; hidden files are neither
    assert imaging.find_images(tmp_path, {".png"}) == [tmp_path / "z.PNG"]
    with pytest.raises(SrganError, match="not a folder"):
        imaging.find_images(tmp_path / "a.jpeg")


def test_the_old_photo_io_names_stay_importable_from_imaging():
    assert imaging.encode_photo is formats.encode_photo and imaging.output_format is formats.output_format
    assert imaging.READ_SUFFIXES is formats.READ_SUFFIXES
