"""Shared fixtures: tiny ONNX models and small generated photos (no network, nothing from ../shared)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tiny_models import make_sr_model

SRGAN_META = {"scale": 4, "layout": "NHWC", "value_range": "0,1"}


def load_file_module(path: Path, name: str):
    """A script or recipe outside the packages (scripts/, examples/) imported as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A fast x4 model (one 3x3 conv) with srgan metadata."""
    return make_sr_model(tmp_path_factory.mktemp("models") / "tiny.onnx", depth=1, kernel=3, metadata=SRGAN_META)


@pytest.fixture(scope="session")
def deep_model_path(tmp_path_factory):
    """An x4 model whose receptive field is 40 LR px (ten 9x9 convs), like the 16-block generator's."""
    return make_sr_model(tmp_path_factory.mktemp("models") / "deep.onnx", depth=10, kernel=9, metadata=SRGAN_META)


def photo_array(height, width, channels=3, seed=0, dtype=np.uint8):
    """A smooth-plus-noise test picture (random noise alone would hide interpolation errors)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(np.sin(xx / 7 + c) + np.cos(yy / 5 - c)) for c in range(channels)], axis=2)
    top = np.iinfo(dtype).max
    values = (base + 2) / 4 * 0.8 + 0.1 + rng.normal(0, 0.03, base.shape)
    return np.clip(np.round(values * top), 0, top).astype(dtype)


@pytest.fixture
def rgb_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo_array(21, 30)).save(path)
    return path
