"""Validation during training: the protocol's (optionally damaged) LR pairs, Y-PSNR/SSIM, and sample triptychs."""

import logging
import math

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.evaluation import degradations
from srgan_cli.evaluation.evaluate import TooSmall, Unreadable, damaged_lr, load_hr
from srgan_cli.evaluation.metrics import psnr_y, ssim_y
from srgan_cli.training import patches

log = logging.getLogger("srgan")


def load_validation(folder, scale=4, damage=""):
    """(lr uint8, hr uint8) pairs of a validation folder, LR made with Pillow's bicubic (the eval protocol).

    Args:
        damage (str): ';'-separated `evaluate --degrade` specs ("clean" for none): each image is validated once
            per spec, so the best generator is the best on the inputs the run is meant for.
    """
    specs = degradations.parse_spec_list(damage)
    pairs, skipped = [], []
    for path in patches.find_photos(folder):
        try:
            hr = load_hr(path, scale)
        except (TooSmall, Unreadable) as err:  # skipped like the training photos, not a reason to stop the run
            skipped.append(str(err))
            log.warning("validation: %s: skipped", err)
            continue
        pairs.extend((damaged_lr(hr, scale, steps, path.stem), hr) for steps in specs)
    if not pairs:
        raise SrganError(f"{folder}: no validation images" + (f" that can be scored ({skipped[0]})" if skipped else ""))
    return pairs


def sr_to_uint8(sr):
    """Generator output in [-1,1] -> uint8 RGB."""
    return np.clip(np.round((np.asarray(sr, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def validate(generator, pairs):
    """Mean Y-PSNR and SSIM (4 px border) of the generator in inference mode over validation pairs; (nan, nan)
    when its output is not finite (a uint8 cast would hide that behind a finite score)."""
    scores = []
    for lr, hr in pairs:
        out = np.asarray(generator(lr[None].astype(np.float32) / 255.0, training=False)[0], dtype=np.float32)
        if not np.isfinite(out).all():
            return math.nan, math.nan
        sr = sr_to_uint8(out)
        scores.append((psnr_y(sr, hr), ssim_y(sr, hr)))
    psnr, ssim = np.mean(scores, axis=0)
    return float(psnr), float(ssim)


def save_sample(generator, lr, hr, path):
    """LR (nearest-upscaled) | generated | original, side by side, as in the original write-up's figures; written
    to `path` and returned (HxWx3 uint8, for TensorBoard)."""
    sr = sr_to_uint8(generator(lr[:1], training=False)[0])
    hr8 = sr_to_uint8(hr[0])
    lr8 = np.clip(np.round(np.asarray(lr[0]) * 255), 0, 255).astype(np.uint8)
    lr_big = np.asarray(Image.fromarray(lr8).resize(hr8.shape[1::-1], Image.NEAREST))
    triptych = np.concatenate([lr_big, sr, hr8], axis=1)
    Image.fromarray(triptych).save(path)
    return triptych
