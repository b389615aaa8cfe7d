"""Real-ESRGAN-style degradations (numpy + Pillow only): parameters, kernels, image ops, plans and --degrade specs."""

from srgan_cli.evaluation.degradations.kernels import (
    KERNEL_KINDS,
    bessel_j1,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    sinc_kernel,
)
from srgan_cli.evaluation.degradations.ops import (
    RESIZE_MODES,
    add_gaussian_noise,
    add_poisson_noise,
    filter2d,
    jpeg_compress,
    resize,
    to_uint8,
)
from srgan_cli.evaluation.degradations.params import (
    FIRST_ROUND,
    SECOND_ROUND,
    DegradationParams,
    LrDamageParams,
    RoundParams,
    load_params,
    params_from_dict,
    params_to_dict,
)
from srgan_cli.evaluation.degradations.plan import MIN_SIZE, DegradationPlan, apply_plan, degrade_crop, draw_plan
from srgan_cli.evaluation.degradations.spec import SPEC_HELP, apply_spec, parse_spec, parse_spec_list
from srgan_cli.evaluation.degradations.steps import Blur, CleanBicubic, Jpeg, Noise, Resize, Sinc, Step, iso_blur

__all__ = [
    "FIRST_ROUND",
    "KERNEL_KINDS",
    "MIN_SIZE",
    "RESIZE_MODES",
    "SECOND_ROUND",
    "SPEC_HELP",
    "Blur",
    "CleanBicubic",
    "DegradationParams",
    "DegradationPlan",
    "Jpeg",
    "LrDamageParams",
    "Noise",
    "Resize",
    "RoundParams",
    "Sinc",
    "Step",
    "add_gaussian_noise",
    "add_poisson_noise",
    "apply_plan",
    "apply_spec",
    "bessel_j1",
    "degrade_crop",
    "draw_plan",
    "filter2d",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "iso_blur",
    "jpeg_compress",
    "load_params",
    "params_from_dict",
    "params_to_dict",
    "parse_spec",
    "parse_spec_list",
    "plateau_kernel",
    "resize",
    "sinc_kernel",
    "to_uint8",
]
