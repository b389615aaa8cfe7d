"""The int8 recipe and report, and the `srgan export` model contract as the quantizer reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError

FIRST, LAST = "first", "last"  # aliases of conv:0 and conv:-1 in `Recipe.exclude`
SENSITIVE = ("conv:0", "conv:1", "conv:-4", "conv:-3")  # srresnet: first conv, block 1's first, body end, upsampler
DEFAULT_REFUSE_DB = 0.05


@dataclass(frozen=True)
class Recipe:
    """How a model is calibrated and quantized; recorded in the int8 model's metadata.

    The defaults were measured on `srgan_x4` (benchmarks/README.md, "int8 on the CPU"). ONNX Runtime's
    `quant_pre_process` folds the batch norms first. The convs run in int8 with per-channel weights and uint8
    activations, calibrated at the 99.99th percentile on bicubic LR crops of training photos. The residual stream
    stays in float32: only conv inputs are quantized. Four sensitive convs stay in float32: the first two, the
    body's last and the first upsampler. Each PRelu between two int8 convs is folded into them (`fold_prelu`). The
    last conv runs in int8 with its output tiered (`last_conv='tiers'`): repeated over value segments of 255 levels
    each and summed back in float32, about 10 bits where one 8-bit output costs 0.3 dB. Measured: 0.009 / 0.022 /
    0.030 dB PSNR loss on Set5 / Set14 / BSD100, NIQE within +0.04, 1.41x fp32 end to end, and 0.97x fp32's peak
    memory. `fp32_stream=False` reaches 1.64x, but it loses 0.031 / 0.039 dB on Set5 / Set14 and NIQE +0.086 on
    Set14: too close to the bounds for a default.

    Attributes:
        photos: calibration photos drawn (seeded) from the folder.
        crops: LR crops per photo (photos x crops is rounded down to a multiple of 8).
        crop: LR crop side in pixels (smaller photos give smaller crops).
        method: ONNX Runtime calibrator: 'minmax', 'percentile' or 'entropy'.
        percentile: the percentile of the 'percentile' method.
        activations: 'u8' (asymmetric uint8 activations, u8s8 kernels) or 's8' (symmetric int8, s8s8).
        fp32_stream: keep residual Adds in float32 (reading unquantized tensors); only conv inputs are quantized.
        last_conv: the last conv: 'float' (kept in float32), 'tiers' (int8, tiered output) or 'int8' (plain).
        fold_prelu: fold each PRelu between two int8 convs into them (`graph.fold_prelu`), so it runs in int8.
        tiers: value segments of the tiered last conv.
        exclude: convs kept in float32: node names, or 'conv:I' for the I-th conv in graph order (negative: from
            the end), 'first' and 'last' for conv:0 and conv:-1.
        reduce_range: 7-bit weights; None decides by the CPU (only x86 CPUs without VNNI need it).
        seed: seed of the photo and crop draw.
        damage: `srgan evaluate --degrade` specs ('jpeg:75', 'noise:6,jpeg:75'); the calibration photos take turns
            between clean LR and LR damaged by each, for models made for damaged photos. Empty: clean LR only.
    """

    photos: int = 32
    crops: int = 2
    crop: int = 64
    method: str = "percentile"
    percentile: float = 99.99
    activations: str = "u8"
    fp32_stream: bool = True
    last_conv: str = "tiers"
    fold_prelu: bool = True
    tiers: int = 4
    exclude: tuple[str, ...] = SENSITIVE
    reduce_range: bool | None = None
    seed: int = 0
    damage: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from srgan_cli.evaluation.evaluate import parse_damage

        parse_damage(self.damage)  # a malformed spec fails here, before any work
        if self.method not in ("minmax", "percentile", "entropy"):
            raise SrganError(f"calibration method {self.method!r}: use minmax, percentile or entropy")
        if self.activations not in ("u8", "s8"):
            raise SrganError(f"activations {self.activations!r}: use u8 or s8")
        if self.last_conv not in ("float", "tiers", "int8"):
            raise SrganError(f"last conv {self.last_conv!r}: use float, tiers or int8")
        if min(self.photos, self.crops, self.crop) < 1 or self.tiers < 2:
            raise SrganError("photos, crops and crop must be >= 1, tiers >= 2")


@dataclass
class QuantizeReport:
    """What `quantize_model` did.

    Attributes:
        output: the int8 model written.
        recipe: the recipe as recorded in the metadata (reduce_range resolved, ORT version, ...).
        ops: operator counts of the int8 graph.
        float_convs: convs left in float32.
        seconds: wall time.
        check: `check_against_fp32` results, when check photos were given.
    """

    output: Path
    recipe: dict[str, Any]
    ops: dict[str, int]
    float_convs: list[str]
    seconds: float
    check: dict[str, Any] | None = field(default=None)
