"""Blur kernels: the Gaussian family (isotropic, anisotropic, generalized, plateau), the 2D sinc and its Bessel J1."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_J1_INTERVALS = 48  # trapezoid intervals on [0, pi]: below 1e-12 error for |x| <= 50 (sinc kernels need <= ~45)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark a cached array read-only, so sharing it between calls (and threads) is safe."""
    array.setflags(write=False)
    return array


@lru_cache(maxsize=64)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    axis = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)  # xx varies along columns (x), yy along rows (y), as Real-ESRGAN's mesh_grid
    return _frozen(xx), _frozen(yy)


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on the kernel grid, Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"kernel sigmas must be positive, got {sigma_x}, {sigma_y}")
    cos, sin = math.cos(theta), math.sin(theta)
    inv_x, inv_y = sigma_x**-2, sigma_y**-2  # Sigma^-1 = R diag(1/sigma_x^2, 1/sigma_y^2) R^T
    xx, yy = _grid(size)
    xx_term = (cos * cos * inv_x + sin * sin * inv_y) * xx * xx
    yy_term = (sin * sin * inv_x + cos * cos * inv_y) * yy * yy
    return xx_term + 2 * cos * sin * (inv_x - inv_y) * xx * yy + yy_term


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """A (possibly anisotropic, rotated) Gaussian kernel; isotropic when ``sigma_x == sigma_y``.

    Args:
        size: Odd side length.
        sigma_x: Standard deviation along the kernel's own x axis (before rotation), in px.
        sigma_y: Standard deviation along its own y axis, in px.
        theta: Counter-clockwise rotation of the x axis, in radians (0: x runs along the columns).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """A generalized Gaussian kernel exp(-0.5 (x^T Sigma^-1 x)^beta).

    Args:
        size: Odd side length.
        sigma_x: Scale along the kernel's own x axis, in px.
        sigma_y: Scale along its own y axis, in px.
        theta: Counter-clockwise rotation, in radians.
        beta: Shape (1: Gaussian; below 1: heavier tails; above 1: flatter top).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    return _normalised(np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """A plateau-shaped kernel 1 / (1 + (x^T Sigma^-1 x)^beta).

    Arguments and result as ``generalized_gaussian_kernel``'s, but a larger ``beta`` gives a flatter top and a sharper
    shoulder.
    """
    return _normalised(1.0 / (1.0 + np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


@lru_cache(maxsize=1)
def _j1_nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tau = np.linspace(0.0, np.pi, _J1_INTERVALS + 1)
    weights = np.full(tau.shape, 1.0 / _J1_INTERVALS)
    weights[[0, -1]] *= 0.5
    return _frozen(tau), _frozen(np.sin(tau)), _frozen(weights)


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """The Bessel function J1 from its integral J1(x) = (1/pi) int_0^pi cos(t - x sin t) dt.

    The integrand is smooth, periodic and even about pi, so the trapezoid rule on [0, pi] converges exponentially;
    48 intervals give below 1e-12 error for |x| <= 50.

    Args:
        x: Arguments (any shape).

    Returns:
        J1 at each argument, float64, same shape.
    """
    tau, sin_tau, weights = _j1_nodes()
    values = np.asarray(x, dtype=np.float64)
    return np.cos(tau - values[..., None] * sin_tau) @ weights


@lru_cache(maxsize=64)
def _radii(size: int) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = _grid(size)
    radii, inverse = np.unique(np.hypot(xx, yy), return_inverse=True)
    return _frozen(radii), _frozen(inverse.reshape(size, size))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """A circular low-pass (2D sinc) kernel: cutoff J1(cutoff r) / (2 pi r), centre cutoff^2 / (4 pi).

    Args:
        size: Odd side length.
        cutoff: Angular cutoff frequency in radians per px (pi: no low-pass).

    Returns:
        A float64 ``size`` x ``size`` array summing to 1.
    """
    radii, inverse = _radii(size)
    values = np.empty_like(radii)
    values[0] = cutoff**2 / (4.0 * np.pi)  # radii[0] is the centre, r = 0
    values[1:] = cutoff * bessel_j1(cutoff * radii[1:]) / (2.0 * np.pi * radii[1:])
    return _normalised(values[inverse])
