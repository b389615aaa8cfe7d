"""The architecture registry: names to builders, recorded in config.json, and a new architecture end to end."""

import json

import keras
import pytest
from keras import layers
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import UsageError
from srgan_cli.training import archs
from srgan_cli.training.layers import PixelShuffle
from tests.conftest import photo_array

pytestmark = pytest.mark.tf
runner = CliRunner()


def build_dummy(features=4, name="generator"):
    """A tiny x4 generator: a 3x3 conv of `features` channels, one to 48, pixel shuffle, tanh."""
    lr = keras.Input((None, None, 3), name="lr")
    x = layers.Conv2D(48, 3, padding="same")(layers.Conv2D(features, 3, padding="same", activation="relu")(lr))
    sr = layers.Activation("tanh", name="sr")(PixelShuffle(4)(x))
    return keras.Model(lr, sr, name=name)


DUMMY = archs.Architecture(build_dummy, {"features": 4}, lambda p: f"dummy x4, {p['features']} features")


@pytest.fixture
def dummy_registered(monkeypatch):
    monkeypatch.setitem(archs.ARCHITECTURES, "dummy", DUMMY)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for i in range(2):
        Image.fromarray(photo_array(40, 44, seed=i)).save(folder / f"p{i}.png")
    return folder


def test_registry_builds_the_paper_generator_with_defaults_and_refuses_unknown_names():
    generator = archs.build_generator("srresnet", {"blocks": 1, "channels": 8})
    assert generator.output_shape == (None, None, None, 3)
    assert archs.params_of("srresnet") == {"blocks": 16, "channels": 64, "activation": "prelu"}
    with pytest.raises(UsageError, match="registered: srresnet"):
        archs.get("edsr")
    with pytest.raises(UsageError, match="no parameter 'depth'"):
        archs.params_of("srresnet", {"depth": 3})


def test_a_new_architecture_trains_exports_and_upscales(dummy_registered, photos, tmp_path):
    from srgan_cli.upscale.inference import Upscaler

    result = runner.invoke(app, ["train", "--data", str(photos), "--runs", str(tmp_path), "--name", "d",
                                 "--arch", "dummy", "--hr-size", "24", "--batch-size", "2", "--steps", "2",
                                 "--sample-every", "0", "--lr", "1e-2", "-q"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert (config["arch"], config["arch_params"]) == ("dummy", {"features": 4})
    trained = keras.saving.load_model(tmp_path / "d" / "generator.keras", safe_mode=True)
    assert [w.shape for w in trained.get_weights()][0] == (3, 3, 3, 4)  # saved as the registered builder made it

    result = runner.invoke(app, ["export", str(tmp_path / "d"), "-o", str(tmp_path / "d.onnx"), "-q"])
    assert result.exit_code == 0, result.output
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "d.onnx")).metadata_props}
    assert (meta["arch"], meta["architecture"], meta["scale"]) == ("dummy", "dummy x4, 4 features", "4")
    out = Upscaler(str(tmp_path / "d.onnx"), device="cpu").upscale(Image.fromarray(photo_array(10, 13)))
    assert out.size == (52, 40)


def test_an_unknown_arch_is_one_line_before_any_run_folder(photos, tmp_path):
    result = runner.invoke(app, ["train", "--data", str(photos), "--runs", str(tmp_path), "--name", "x",
                                 "--arch", "nope", "--steps", "1", "-q"])
    assert result.exit_code == 2 and "registered: srresnet" in result.output
    assert not (tmp_path / "x").exists()
