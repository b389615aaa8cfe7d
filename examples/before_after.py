"""Makes examples/before_after.png for the README: a crop of chelsea.png shrunk 4x, then enlarged back by bicubic
and by each shipped model (srresnet_x4, then srgan_x4 when present), beside the original.
Run: python examples/before_after.py"""

from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.evaluation.evaluate import bicubic_upscale, degrade
from srgan_cli.upscale.imaging import Photo, encode_photo, write_atomic
from srgan_cli.upscale.inference import Upscaler

HERE = Path(__file__).parent
WEIGHTS = HERE.parent / "weights"
MODELS = ("srresnet_x4.onnx", "srgan_x4.onnx")


def main(box=(120, 20, 320, 220)):
    hr = np.asarray(Image.open(HERE / "chelsea.png").convert("RGB").crop(box))
    lr = degrade(hr, 4)
    panels = [bicubic_upscale(lr, 4)]
    for name in MODELS:
        if (WEIGHTS / name).exists():
            upscaler = Upscaler(WEIGHTS / name, device="cpu")
            panels.append(upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8))
    gap = np.full((hr.shape[0], 6, 3), 255, np.uint8)
    strip = np.concatenate([part for panel in [*panels, hr] for part in (panel, gap)][:-1], axis=1)
    write_atomic(encode_photo(Photo(strip), "PNG")[0], HERE / "before_after.png")


if __name__ == "__main__":
    main()
