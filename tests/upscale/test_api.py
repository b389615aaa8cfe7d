"""The Python API does what the command line does (inference.py): orientation, ICC, 16 bits, outscale, numpy arrays,
tiny images, out-of-memory retries with smaller tiles, tiles sized from available memory; one-line SrganErrors."""

import numpy as np
import png
import pytest
from PIL import Image, ImageCms

from srgan_cli.errors import SrganError
from srgan_cli.upscale import imaging, session
from srgan_cli.upscale.inference import Upscaler
from tests.conftest import photo_array
from tests.upscale.onnx_builders import make_odd_model


@pytest.fixture(scope="module")
def upscaler(model_path):
    return Upscaler(model_path, device="cpu", tile=16, tile_pad=4)


def test_a_pil_image_from_a_file_is_oriented_and_keeps_its_icc_exif_and_dpi(upscaler, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.fromarray(photo_array(10, 20))
    exif = image.getexif()
    exif[imaging.ORIENTATION] = 6
    exif[0x010F] = "TestCam"
    image.save(tmp_path / "r.jpg", exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300), quality=95)
    out = upscaler.upscale(Image.open(tmp_path / "r.jpg"))
    assert out.size == (40, 80)  # shown rotated, as the command line writes it
    assert out.info.get("icc_profile") == icc and round(out.info["dpi"][0]) == 300
    assert out.getexif().get(0x010F) == "TestCam" and out.getexif().get(imaging.ORIENTATION, 1) == 1


def test_outscale_per_call(upscaler):
    assert upscaler.upscale(Image.fromarray(photo_array(7, 5)), outscale=2).size == (10, 14)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_numpy_arrays_in_numpy_arrays_out_same_dtype_and_channels(upscaler, dtype, channels):
    array = photo_array(6, 5, channels or 1, dtype=dtype)
    array = array[..., 0] if channels is None else array
    out = upscaler.upscale(array)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert out.shape == (24, 20, *array.shape[2:])
    assert abs(float(out.mean()) - float(array.mean())) < 0.1 * float(array.mean())


def test_float_arrays_stay_float_in_0_1(upscaler):
    out = upscaler.upscale(np.full((4, 4, 3), 0.5, np.float32))
    assert out.dtype == np.float32 and out.shape == (16, 16, 3)
    assert np.allclose(out, 0.5, atol=0.1)  # the tiny model is near identity


def test_upscale_file_keeps_16_bits_like_the_command_line(upscaler, tmp_path):
    array = photo_array(9, 11, 3, dtype=np.uint16)
    with open(tmp_path / "c16.png", "wb") as f:
        png.Writer(11, 9, greyscale=False, bitdepth=16).write(f, array.reshape(9, 33))
    notes = upscaler.upscale_file(tmp_path / "c16.png", tmp_path / "big.png")
    assert notes == []
    width, height, _, info = png.Reader(filename=str(tmp_path / "big.png")).asDirect()
    assert (width, height, info["bitdepth"]) == (44, 36, 16)
    with pytest.raises(SrganError, match="exists"):
        upscaler.upscale_file(tmp_path / "c16.png", tmp_path / "big.png")


@pytest.mark.parametrize("bad", ["photo.jpg", np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4, 3), np.int64),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_what_the_api_cannot_take_is_one_srgan_error(upscaler, bad):
    with pytest.raises(SrganError) as caught:
        upscaler.upscale(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 5)])
def test_tiny_images_keep_their_colour(tmp_path, size):
    blur = Upscaler(make_odd_model(tmp_path / "blur.onnx", "blur"), device="cpu", scale=4)
    colour = np.array([200, 30, 90], np.uint8)
    out = np.asarray(blur.upscale(Image.fromarray(np.tile(colour, (*size, 1)))))
    assert out.shape == (size[0] * 4, size[1] * 4, 3)
    assert np.abs(out.astype(int) - colour).max() <= 2, out[0, 0]


class RunsOutOfMemory:
    """A session that fails on windows larger than `limit` pixels a side, as ONNX Runtime does out of memory."""

    def __init__(self, real, limit):
        self.real, self.limit, self.sides = real, limit, []

    def run(self, names, feed, options=None):
        side = max(next(iter(feed.values())).shape[1:3])
        self.sides.append(side)
        if side > self.limit:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for 123 bytes")
        return self.real.run(names, feed, options)


def test_out_of_memory_retries_the_image_with_half_the_tile(model_path):
    upscaler = Upscaler(model_path, device="cpu", tile=0, tile_pad=4)
    image = photo_array(100, 90)
    expected = np.asarray(upscaler.upscale(Image.fromarray(image)))
    upscaler.session = RunsOutOfMemory(upscaler.session, limit=40)
    photo = upscaler.upscale_photo(imaging.photo_from_pixels(image))
    assert photo.size == (360, 400) and np.abs(photo.color.astype(int) - expected).max() <= 1
    assert any("out of memory" in note and "25" in note for note in photo.notes), photo.notes


def test_out_of_memory_at_the_smallest_tile_is_not_blamed_on_the_tile(model_path):
    upscaler = Upscaler(model_path, device="cpu", tile=64, tile_pad=4)
    upscaler.session = RunsOutOfMemory(upscaler.session, limit=0)
    with pytest.raises(SrganError, match="out of memory") as caught:
        upscaler.upscale(Image.fromarray(photo_array(100, 90)))
    assert "--tile" not in str(caught.value)


def test_auto_tiles_are_sized_from_available_memory_not_free_memory(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:          100000 kB\nMemAvailable:    2097152 kB\n")
    monkeypatch.setattr(session, "MEMINFO", meminfo, raising=False)
    budget = (2 << 30) // 4
    assert session.auto_tile(16) == int((budget / session.BYTES_PER_LR_PIXEL) ** 0.5) - 32
