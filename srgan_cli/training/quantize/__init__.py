"""Static int8 quantization of SR models (ONNX Runtime QDQ), calibrated on LR photo crops, checked against fp32."""

from srgan_cli.training.quantize.build import quantize_model
from srgan_cli.training.quantize.check import check_against_fp32
from srgan_cli.training.quantize.graph import resolve_convs, segment_bounds, tier_last_conv
from srgan_cli.training.quantize.recipe import DEFAULT_REFUSE_DB, QuantizeReport, Recipe
from srgan_cli.upscale.precision import cpu_has_vnni

__all__ = ["DEFAULT_REFUSE_DB", "QuantizeReport", "Recipe", "check_against_fp32", "cpu_has_vnni", "quantize_model",
           "resolve_convs", "segment_bounds", "tier_last_conv"]
