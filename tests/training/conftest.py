"""Fixtures of the training tests: a folder of small generated photos (nested, one too small, one unreadable)."""

import pytest
from PIL import Image

from tests.conftest import photo_array


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    for i in range(3):
        Image.fromarray(photo_array(40 + i, 52, seed=i)).save(folder / "nested" / f"p{i}.PNG")
    Image.fromarray(photo_array(10, 10)).save(folder / "small.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return folder
