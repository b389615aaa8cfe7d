"""Training photos and patches without TensorFlow: folders decoded once, deterministic random crops, bicubic LR."""

import functools
import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.degradations import degrade_crop
from srgan_cli.evaluation.evaluate import degrade
from srgan_cli.upscale import imaging
from srgan_cli.upscale.imaging import find_images

log = logging.getLogger("srgan")
CHUNK = 500  # patch pairs per job of the cutting processes
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


def patch_pairs(images, count, hr_size, seed, first_index=0, scale=4, degradation=None):
    """`count` (LR, HR) uint8 patch pairs: crops `first_index`... of a run, LR by Pillow's bicubic (the protocol's)
    or, with `degradation` (DegradationParams), by the realistic pipeline drawn from (seed, crop index).

    Returns:
        tuple: (count, hr_size/scale, hr_size/scale, 3) LR and (count, hr_size, hr_size, 3) HR uint8 arrays.
    """
    indices = range(first_index, first_index + count)
    hr = np.stack([random_crop(images, i, hr_size, seed) for i in indices])
    if degradation is None:
        return np.stack([degrade(patch, scale) for patch in hr]), hr
    return np.stack([degrade_crop(patch, seed, i, degradation) for i, patch in zip(indices, hr, strict=False)]), hr


@functools.lru_cache(maxsize=1)
def _cached_photos(folder, hr_size):
    return load_photos(folder, hr_size).images


def degradation_params(spec: str | None) -> Any:
    """The realistic pipeline's DegradationParams for a degradation option: a JSON file, "default" (the defaults), or
    None / "" (None: the protocol's bicubic LR)."""
    from srgan_cli.evaluation.degradations import load_params

    return load_params(None if spec == "default" else spec) if spec else None


def _cut_chunk(job: tuple[str, int, int, int, int, str | None]) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of patch pairs (in a worker process, which decodes the photos once)."""
    folder, count, hr_size, seed, first, degradation = job
    return patch_pairs(_cached_photos(folder, hr_size), count, hr_size, seed, first,
                       degradation=degradation_params(degradation))


def cut_in_processes(folder: str | Path, count: int, hr_size: int, seed: int, degradation: str | None = None,
                     workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`count` (LR, HR) uint8 pairs cut by `workers` spawned processes; crop i is drawn from (seed, i) alone, so the
    result is the same for any number of workers.

    Args:
        folder (str): folder tree of training photos.
        count (int): patch pairs to cut.
        hr_size (int): HR crop side.
        seed (int): the run's seed.
        degradation (str | None): a degradation JSON, "default" (the realistic defaults) or None (bicubic).
        workers (int): processes cutting chunks of CHUNK pairs.

    Raises:
        SrganError: no pairs asked for, no usable photo, or unreadable degradation parameters.
    """
    if count < 1:
        raise SrganError(f"{count} patch pairs asked for: cut at least 1")
    size = max(1, min(CHUNK, -(-count // max(1, workers))))
    jobs = [(str(folder), min(size, count - first), hr_size, seed, first, degradation)
            for first in range(0, count, size)]
    if workers <= 1 or len(jobs) == 1:
        parts = [_cut_chunk(job) for job in jobs]
    else:  # spawned workers import this module, which needs no Keras
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            parts = list(pool.map(_cut_chunk, jobs))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def endless_batches(lr_patches: np.ndarray, hr_patches: np.ndarray, batch_size: int,
                    seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless shuffled batches of uint8 pairs, each pass a new order: LR in [0,1], HR in [-1,1] (the tanh range)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(lr_patches))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            pick = np.sort(order[start:start + batch_size])
            yield lr_patches[pick].astype("float32") / 255.0, hr_patches[pick].astype("float32") / 127.5 - 1.0
