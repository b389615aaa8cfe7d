"""`srgan evaluate`: the standard x4 SR protocol (bicubic LR, Y-channel PSNR/SSIM, 4 px border) against bicubic."""

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.evaluation.metrics import SSIM_WINDOW, colour_shift, edge_overshoot, grid_db, mod_crop, psnr_y, ssim_y
from srgan_cli.upscale import imaging

BICUBIC = "bicubic"


@dataclass
class Score:
    psnr: float
    ssim: float
    grid: float  # metrics.grid_db: LR-grid-periodic error, dB (0-7 for bicubic)
    tint: float  # metrics.colour_shift: largest per-channel mean error, 8-bit levels
    halo: float  # metrics.edge_overshoot: output beyond the photo's local range at strong edges, levels


@dataclass
class ImageResult:
    name: str
    scores: dict = field(default_factory=dict)  # method -> Score


def load_hr(path, scale, border=4):
    """HR image as 8-bit RGB (grayscale replicated), cropped to multiples of the scale; big enough to score."""
    try:
        hr = mod_crop(imaging.read_rgb8(path), scale)
    except SrganError as err:
        raise SrganError(f"{path}: {err}") from None
    least = 2 * border + SSIM_WINDOW
    if min(hr.shape[:2]) < least:
        raise SrganError(f"{path}: {hr.shape[1]}x{hr.shape[0]} after cropping to multiples of {scale} is too small "
                         f"to score (SSIM needs {least}x{least} pixels with a {border} px border)")
    return hr


def degrade(hr, scale):
    """LR by Pillow's bicubic (matches MATLAB imresize to ~0.01 dB), as the protocol prescribes."""
    return np.asarray(Image.fromarray(hr).resize((hr.shape[1] // scale, hr.shape[0] // scale), Image.BICUBIC))


def bicubic_upscale(lr, scale):
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.BICUBIC))


def side_by_side(images, hr, path, crop=160):
    """Centre crops of (bicubic, models..., original) next to each other."""
    h, w = hr.shape[:2]
    size = min(crop, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    strip = np.concatenate([img[y:y + size, x:x + size] for img in [*images, hr]], axis=1)
    imaging.write_atomic(imaging.encode_photo(imaging.Photo(strip), "PNG")[0], path)


def evaluate_folder(folder, upscalers, save_dir=None, border=4):
    """Score bicubic and each upscaler on every image of `folder`.

    Args:
        folder (str | Path): HR images.
        upscalers (dict): name -> Upscaler (all of the same scale).
        save_dir (Path | None): write side-by-side crops here.
        border (int): pixels ignored at each edge.

    Returns:
        list: ImageResult per image, sorted by name.
    """
    paths = imaging.find_images(folder)
    if not paths:
        raise SrganError(f"{folder}: no images to evaluate")
    scale = next(iter(upscalers.values())).scale
    results = []
    for path in paths:
        hr = load_hr(path, scale, border)
        lr = degrade(hr, scale)
        outputs = {BICUBIC: bicubic_upscale(lr, scale)}
        for name, upscaler in upscalers.items():
            outputs[name] = upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8)
        result = ImageResult(path.stem, {k: score(v, hr, scale, border) for k, v in outputs.items()})
        results.append(result)
        if save_dir:
            side_by_side(list(outputs.values()), hr, Path(save_dir) / Path(folder).name / f"{path.stem}.png")
    return results


def score(sr, hr, scale, border):
    return Score(psnr_y(sr, hr, border), ssim_y(sr, hr, border), grid_db(sr, hr, scale, border),
                 colour_shift(sr, hr, border), edge_overshoot(sr, hr, border))


def mean_scores(results):
    """Per method, the mean of every Score field over the images."""
    names = [f.name for f in fields(Score)]
    return {m: Score(*(float(np.mean([getattr(r.scores[m], n) for r in results])) for n in names))
            for m in results[0].scores}
