"""LDL, locally discriminative learning (Liang et al., CVPR 2022): a per-pixel L1 weighted by an artifact map."""

from __future__ import annotations

from typing import Any

from keras import ops

WINDOW = 7  # the local-variance window of the paper and BasicSR
PATCH_EXPONENT = 1 / 5  # the patch-level variance is damped to its fifth root


def _unit(x: Any) -> Any:
    """[-1,1] pixels to [0,1], the range BasicSR's weights were tuned in."""
    return (ops.cast(x, "float32") + 1.0) / 2.0


def _residual(hr: Any, sr: Any) -> Any:
    """|HR - SR| summed over the colour channels: (B, H, W, 1)."""
    return ops.sum(ops.abs(_unit(hr) - _unit(sr)), axis=-1, keepdims=True)


def local_variance(x: Any, window: int = WINDOW) -> Any:
    """Unbiased variance of each pixel's window x window neighbourhood (reflect-padded at the borders).

    Args:
        x: (B, H, W, C) with H and W larger than window // 2.
        window: odd neighbourhood side.

    Returns:
        (B, H, W, C) variances.
    """
    pad = window // 2
    padded = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    mean = ops.average_pool(padded, window, strides=1, padding="valid")
    mean_square = ops.average_pool(ops.square(padded), window, strides=1, padding="valid")
    count = window * window
    return ops.relu(mean_square - ops.square(mean)) * (count / (count - 1))


def artifact_map(hr: Any, sr: Any, reference: Any = None, window: int = WINDOW) -> Any:
    """The refined artifact map of BasicSR's `get_refined_artifact_map`, without gradient.

    The residual r = sum over channels of |HR - SR| (pixels in [0,1]); each pixel's weight is the local variance of
    r (window x window) times the variance of r over the whole patch to the power 1/5. Where the reference (the
    moving-average generator's output: the stable model) is further from HR than SR is, the weight is 0: there SR
    is not making an artifact the stable model avoids.

    Args:
        hr, sr: (B, H, W, 3) in [-1,1].
        reference: the reference SR, same shape, or None (no masking: the map of SR's own residual).
        window: side of the local-variance window.

    Returns:
        (B, H, W, 1) non-negative weights.
    """
    hr, sr = ops.stop_gradient(hr), ops.stop_gradient(sr)
    residual = _residual(hr, sr)
    height, width = residual.shape[1], residual.shape[2]
    unbiased = height * width / (height * width - 1) if height and width else 1.0  # as torch.var
    patch = ops.var(residual, axis=(1, 2, 3), keepdims=True) * unbiased
    weight = ops.power(patch, PATCH_EXPONENT) * local_variance(residual, window)
    if reference is not None:
        stable = _residual(hr, ops.stop_gradient(reference))
        weight = ops.where(residual < stable, ops.zeros_like(weight), weight)
    return ops.stop_gradient(weight)


def ldl_loss(hr: Any, sr: Any, reference: Any = None) -> Any:
    """Mean |artifact_map * (HR - SR)| in [0,1] pixel units, as BasicSR's L1 on the weighted images.

    Args:
        hr, sr: (B, H, W, 3) in [-1,1]; the gradient flows through sr only.
        reference: the moving-average generator's output, or None.
    """
    weight = artifact_map(hr, sr, reference)
    return ops.mean(ops.abs(weight * (_unit(hr) - _unit(sr))))
