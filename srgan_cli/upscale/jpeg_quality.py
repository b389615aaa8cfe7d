"""How hard a JPEG file was compressed: its IJG quality, estimated from the luminance quantization table."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

# The IJG / JPEG Annex K luminance table in natural (row-major) order, the one libjpeg scales by quality.
STANDARD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
JPEG_FORMATS = ("JPEG", "MPO")  # Pillow opens camera JPEGs with a multi-picture (MPF) index as MPO
DAMAGING_QUALITY = 85  # at or below, the models trained on damaged inputs beat the clean ones (weights/README.md)


@cache
def _ijg_tables() -> np.ndarray:
    """(100, 64): the luminance table libjpeg writes at quality 1..100."""
    quality = np.arange(1, 101)[:, None]
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    return np.clip((STANDARD_LUMA[None] * scale + 50) // 100, 1, 255)


def quality_of_table(table: Sequence[int]) -> int:
    """The IJG quality (1..100) whose luminance table is nearest `table` (64 values, natural order).

    Exact for files written by libjpeg and its descendants (Pillow, most software); for a camera's own tables it is
    the IJG quality of about the same coarseness.
    """
    distances = np.abs(_ijg_tables() - np.asarray(table, dtype=np.int64)[None]).sum(axis=1)
    return int(np.argmin(distances)) + 1


def image_quality(image: Image.Image) -> int | None:
    """The estimated quality of an opened JPEG (its header is enough), or None for any other image."""
    tables = getattr(image, "quantization", None) if image.format in JPEG_FORMATS else None
    return quality_of_table(tables[0]) if tables and len(tables.get(0, ())) == 64 else None


def jpeg_quality(path: str | Path) -> int | None:
    """The estimated quality of a JPEG file, or None for any other file (or one that cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image_quality(image)
    except Exception:  # the batch reports unreadable files itself
        return None
