"""Training data: photo folders decoded once into memory, random HR crops, bicubic x4 LR, as a tf.data pipeline."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from srgan_cli import imaging
from srgan_cli.errors import SrganError
from srgan_cli.imaging import find_images

log = logging.getLogger("srgan")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class PhotoSet:
    """Decoded training photos plus what was left out."""

    images: list
    too_small: int = 0
    unreadable: int = 0


def find_photos(folder):
    """All photo files under `folder`, recursively, any extension case, sorted for determinism."""
    if not Path(folder).is_dir():
        raise SrganError(f"{folder}: not a folder")
    return find_images(folder, PHOTO_SUFFIXES)


def load_photos(folder, min_size):
    """Decode every photo at least `min_size` on both sides; skip (and count) the rest, never die on one file.

    Args:
        folder (str | Path): folder tree of photos.
        min_size (int): smallest usable side (the HR crop size).

    Returns:
        PhotoSet: uint8 HxWx3 arrays and skip counts.
    """
    found = PhotoSet(images=[])
    for path in find_photos(folder):
        try:
            rgb = imaging.read_rgb8(path)
        except SrganError as err:
            log.warning("skipping unreadable %s: %s", path, err)
            found.unreadable += 1
            continue
        if min(rgb.shape[:2]) < min_size:
            found.too_small += 1
            continue
        found.images.append(rgb)
    if not found.images:
        raise SrganError(f"{folder}: no photos of at least {min_size}x{min_size} px to train on "
                         f"({found.too_small} too small, {found.unreadable} unreadable)")
    return found


def random_crop(images, index, hr_size, seed):
    """The HR crop number `index` of a run: image, position, flips and rotation drawn from (seed, index) only.

    Deterministic per index, so a resumed run sees exactly the crops it would have seen.
    """
    rng = np.random.default_rng((seed, int(index)))
    img = images[rng.integers(len(images))]
    y = rng.integers(img.shape[0] - hr_size + 1)
    x = rng.integers(img.shape[1] - hr_size + 1)
    crop = img[y:y + hr_size, x:x + hr_size]
    crop = np.rot90(crop, rng.integers(4))
    if rng.integers(2):
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def bicubic_downscale(hr, scale=4):
    """x`scale` bicubic downscale with antialiasing, rounded to 8-bit levels: matches Pillow's BICUBIC resize.

    Args:
        hr (tf.Tensor): float32 (..., H, W, 3) in 0..255.
        scale (int): downscaling factor.

    Returns:
        tf.Tensor: float32 (..., H/scale, W/scale, 3) in 0..255, integer-valued.
    """
    size = (tf.shape(hr)[-3] // scale, tf.shape(hr)[-2] // scale)
    lr = tf.image.resize(hr, size, method="bicubic", antialias=True)
    return tf.clip_by_value(tf.round(lr), 0.0, 255.0)


def to_training_pair(hr_uint8, scale=4):
    """uint8 HR batch -> (LR in [0,1], HR in [-1,1]), the value ranges of the paper."""
    hr = tf.cast(hr_uint8, tf.float32)
    lr = bicubic_downscale(hr, scale)
    return lr / 255.0, hr / 127.5 - 1.0


def make_dataset(images, hr_size, batch_size, seed, first_step=0, scale=4):
    """Infinite tf.data pipeline of (lr, hr) batches starting at step `first_step`.

    Args:
        images (list): decoded uint8 photos (the in-memory cache).
        hr_size (int): HR crop side; LR side is hr_size // scale.
        batch_size (int): global batch size.
        seed (int): run seed.
        first_step (int): step to start from (for exact resumption).
        scale (int): SR factor.

    Returns:
        tf.data.Dataset: yields float32 (B, h, w, 3) LR in [0,1] and (B, H, W, 3) HR in [-1,1].
    """
    def crop(index):
        return random_crop(images, index, hr_size, seed)

    def crop_op(index):
        hr = tf.numpy_function(crop, [index], tf.uint8, stateful=False)
        return tf.ensure_shape(hr, (hr_size, hr_size, 3))

    ds = tf.data.Dataset.range(first_step * batch_size, 2**62)
    ds = ds.map(crop_op, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda hr: to_training_pair(hr, scale), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
