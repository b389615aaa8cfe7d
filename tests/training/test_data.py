"""The training data: Pillow-matching bicubic LR, photo loading with skip counts, crops drawn from (seed, index)."""

import numpy as np
import pytest
from PIL import Image

from srgan_cli.errors import SrganError
from tests.conftest import photo_array

tf = pytest.importorskip("tensorflow")

from srgan_cli.training import data, patches  # noqa: E402

pytestmark = pytest.mark.tf


def test_pipeline_lr_matches_pillow_bicubic():
    hr = photo_array(96, 96, seed=7)
    ours = np.asarray(data.bicubic_downscale(tf.constant(hr, tf.float32)))
    pillow = np.asarray(Image.fromarray(hr).resize((24, 24), Image.BICUBIC), dtype=np.float32)
    assert np.abs(ours - pillow).mean() < 1.0  # under 1/255 on average
    assert ours.shape == (24, 24, 3)


def test_loading_skips_small_and_unreadable_and_counts_them(photos):
    found = patches.load_photos(photos, 24)
    assert (len(found.images), found.too_small, found.unreadable) == (3, 1, 1)
    with pytest.raises(SrganError, match="no photos"):
        patches.load_photos(photos, 1000)


def test_crops_depend_only_on_seed_and_index(photos):
    images = patches.load_photos(photos, 24).images
    a, b = patches.random_crop(images, 5, 24, 0), patches.random_crop(images, 5, 24, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, patches.random_crop(images, 6, 24, 0))
    lr, hr = next(iter(data.make_dataset(images, 24, 4, seed=0)))
    assert lr.shape == (4, 6, 6, 3) and hr.shape == (4, 24, 24, 3)
    assert float(tf.reduce_min(lr)) >= 0 and float(tf.reduce_max(hr)) <= 1 and float(tf.reduce_min(hr)) >= -1


def test_cutting_processes_give_the_same_pairs_as_one_and_apply_the_degradation(photos, tmp_path):
    one = patches.cut_in_processes(photos, 7, 24, seed=3, workers=1)
    two = patches.cut_in_processes(photos, 7, 24, seed=3, workers=2)
    assert one[0].shape == (7, 6, 6, 3) and one[1].shape == (7, 24, 24, 3)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    damaged = patches.cut_in_processes(photos, 7, 24, seed=3, degradation="default", workers=2)
    assert np.array_equal(damaged[1], one[1]) and not np.array_equal(damaged[0], one[0])  # same crops, other LR
    empty_option = patches.cut_in_processes(photos, 7, 24, seed=3, degradation="", workers=1)
    assert np.array_equal(empty_option[0], one[0])  # an empty option is bicubic, as the GAN script's config says
    with pytest.raises(SrganError, match="at least 1"):
        patches.cut_in_processes(photos, 0, 24, seed=3)
