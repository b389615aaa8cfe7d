"""The Upscaler API (inference.py): one UpscaleSettings object, keyword construction, PIL in and out, threads."""

import inspect
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace

import numpy as np
import pytest
from PIL import Image

from srgan_cli.errors import UsageError
from srgan_cli.upscale import models
from srgan_cli.upscale.inference import Upscaler, UpscaleSettings
from tests.conftest import photo_array


@pytest.fixture(scope="module")
def upscaler(model_path):
    return Upscaler(model_path, device="cpu", tile=16, tile_pad=4)


def test_settings_round_trip_through_the_upscaler(model_path):
    settings = UpscaleSettings(model=model_path, device="cpu", tile=16, tile_pad=4, tta=True, alpha="model",
                               threads=1, scale=4, layout="NHWC", value_range="0,1", outscale=2.0)
    built = Upscaler.from_settings(settings)
    assert built.settings == settings
    assert Upscaler(model_path, device="cpu", tile=16, tile_pad=4, tta=True, alpha="model", threads=1, scale=4,
                    layout="NHWC", value_range="0,1", outscale=2.0).settings == settings
    assert Upscaler.from_settings(replace(settings, tta=False)).settings == replace(settings, tta=False)
    assert (built.device, built.tile, built.scale) == ("cpu", 16, 4)


def test_every_setting_is_a_keyword_of_the_upscaler():
    """The keyword API and the settings object cannot drift apart: same names, same defaults."""
    parameters = inspect.signature(Upscaler.__init__).parameters
    for field in fields(UpscaleSettings):
        name = "model_path" if field.name == "model" else field.name
        assert parameters[name].default == field.default, name
    assert len(parameters) == 1 + len(fields(UpscaleSettings))  # self


@pytest.mark.parametrize("bad", [dict(alpha="blur"), dict(tile=-1), dict(tile_pad=-2), dict(threads=0),
                                 dict(device="tpu"), dict(outscale=0.0), dict(scale=0)])
def test_impossible_settings_are_usage_errors(bad):
    with pytest.raises(UsageError):
        UpscaleSettings(**bad)


def test_the_settings_outscale_applies_to_every_photo(model_path):
    upscaler = Upscaler.from_settings(UpscaleSettings(model=model_path, device="cpu", outscale=2.0))
    assert upscaler.upscale(Image.fromarray(photo_array(7, 5))).size == (10, 14)


def test_the_readme_example_uses_the_shipped_default(monkeypatch, model_path, tmp_path):
    (tmp_path / "tiny_x4.onnx").write_bytes(model_path.read_bytes())
    (tmp_path / "default.txt").write_text("tiny_x4.onnx\n")
    monkeypatch.setattr(models, "WEIGHTS_DIRS", (tmp_path,))
    upscaler = Upscaler()
    assert upscaler.upscale(Image.fromarray(photo_array(6, 5))).size == (20, 24)
    assert Upscaler(device="cpu", tile=0).settings.model is None


def test_python_api_takes_and_returns_pil_images(upscaler):
    for mode in ("RGB", "L", "RGBA", "LA"):
        out = upscaler.upscale(Image.fromarray(photo_array(7, 5, 4)).convert(mode))
        assert (out.size, out.mode) == ((20, 28), mode)


def test_one_upscaler_serves_several_threads(upscaler):
    images = [Image.fromarray(photo_array(9 + i, 13 + 2 * i, seed=i)) for i in range(6)]
    expected = [np.asarray(upscaler.upscale(im)) for im in images]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda im: np.asarray(upscaler.upscale(im)), images * 3))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % len(images)])
