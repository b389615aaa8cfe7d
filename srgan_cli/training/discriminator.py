"""Discriminators: the paper's VGG-style network (one logit) and Real-ESRGAN's spectral-norm U-Net (a logit a pixel)."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

KINDS = ("vgg", "unet")
UNET_STRIDE = 8  # the U-Net halves the crop three times: its side must be a multiple of 8


def discriminator_block(x: Any, filters: int, strides: int, batch_norm: bool = True) -> Any:
    """conv3x3 (+BN) + LeakyReLU(0.2)."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    return layers.LeakyReLU(0.2)(x)


def build_discriminator(hr_size: int = 96, base_filters: int = 64, name: str = "discriminator") -> keras.Model:
    """SRGAN discriminator: HR crop in [-1,1] -> one real/fake logit.

    Args:
        hr_size: side of the square HR crops it judges. Default: 96.
        base_filters: filters of the first block (64 in the paper); doubled every two blocks up to 8x.
        name: model name.

    Returns:
        keras.Model: functional model (None, hr_size, hr_size, 3) -> (None, 1) logits.
    """
    hr = keras.Input((hr_size, hr_size, 3), name="hr")
    x = discriminator_block(hr, base_filters, 1, batch_norm=False)
    x = discriminator_block(x, base_filters, 2)
    for mult in (2, 4, 8):
        x = discriminator_block(x, base_filters * mult, 1)
        x = discriminator_block(x, base_filters * mult, 2)
    x = layers.Flatten()(x)
    x = layers.Dense(base_filters * 16)(x)
    x = layers.LeakyReLU(0.2)(x)
    logits = layers.Dense(1, name="logits")(x)
    return keras.Model(hr, logits, name=name)


@keras.saving.register_keras_serializable(package="srgan")
class SpectralConv2D(layers.Layer):
    """A 2-D convolution whose kernel is divided by its largest singular value (Miyato et al. 2018), as PyTorch's
    spectral_norm, which Real-ESRGAN uses.

    The estimate comes from power iterations on a stored vector u, updated only when training; gradients flow through
    the division, with u and v held constant. Unlike the keras.layers.SpectralNormalization wrapper, the kernel
    variable is never rewritten in the forward pass, so every backend (TensorFlow's tape, JAX's stateless_call)
    and inference mode compute the same function.

    Args:
        filters: output channels.
        kernel_size: side of the square kernel.
        strides: stride on both axes. Default: 1.
        padding: 'same' or 'valid'. Default: 'same'.
        use_bias: add a bias after the convolution. Default: True.
        power_iterations: power-method steps per training call. Default: 1.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "same", use_bias: bool = True,
                 power_iterations: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.padding = filters, kernel_size, strides, padding
        self.use_bias, self.power_iterations = use_bias, power_iterations

    def build(self, input_shape: Any) -> None:
        shape = (self.kernel_size, self.kernel_size, input_shape[-1], self.filters)
        self.kernel = self.add_weight(shape=shape, initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias") if self.use_bias else None
        self.vector_u = self.add_weight(shape=(1, self.filters), initializer=keras.initializers.RandomNormal(0, 1),
                                        trainable=False, name="vector_u", aggregation="mean", autocast=False)

    def normalized_kernel(self, training: bool = False) -> Any:
        """The kernel over its spectral-norm estimate; with `training`, the power iteration's u is stored."""
        kernel = ops.cast(self.kernel, "float32")
        matrix = ops.reshape(kernel, (-1, self.filters))
        u = ops.cast(self.vector_u, "float32")
        v = u
        for _ in range(self.power_iterations):
            v = ops.normalize(ops.matmul(u, ops.transpose(matrix)), axis=-1, epsilon=1e-12)
            u = ops.normalize(ops.matmul(v, matrix), axis=-1, epsilon=1e-12)
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        if training:
            self.vector_u.assign(u)
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return ops.cast(kernel / sigma, self.compute_dtype)

    def call(self, inputs: Any, training: bool = False) -> Any:
        outputs = ops.conv(inputs, self.normalized_kernel(training), strides=self.strides, padding=self.padding)
        return outputs if self.bias is None else outputs + ops.cast(self.bias, outputs.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias,
                "power_iterations": self.power_iterations}


def _lrelu(x: Any) -> Any:
    return layers.LeakyReLU(0.2)(x)


def build_unet_discriminator(base_filters: int = 64, name: str = "discriminator") -> keras.Model:
    """Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al. 2021, UNetDiscriminatorSN).

    conv3x3 in; three 4x4 stride-2 convs down (2x, 4x, 8x filters); three bilinear x2 upsamplings, each followed by a
    conv3x3 and a skip from the matching scale; two conv3x3; conv3x3 to one logit per pixel. Every conv but the first
    and the last is spectrally normalised (without bias, as Real-ESRGAN); LeakyReLU(0.2) after each.

    Args:
        base_filters: filters at full resolution (64 in Real-ESRGAN).
        name: model name.

    Returns:
        keras.Model: (None, H, W, 3) in [-1,1] -> (None, H, W, 1) logits; H and W multiples of 8.
    """
    f = base_filters
    hr = keras.Input((None, None, 3), name="hr")
    x0 = _lrelu(layers.Conv2D(f, 3, padding="same")(hr))
    x1 = _lrelu(SpectralConv2D(f * 2, 4, strides=2, padding="same", use_bias=False)(x0))
    x2 = _lrelu(SpectralConv2D(f * 4, 4, strides=2, padding="same", use_bias=False)(x1))
    x3 = _lrelu(SpectralConv2D(f * 8, 4, strides=2, padding="same", use_bias=False)(x2))
    x = x3
    for filters, skip in ((f * 4, x2), (f * 2, x1), (f, x0)):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.Add()([_lrelu(SpectralConv2D(filters, 3, padding="same", use_bias=False)(x)), skip])
    x = _lrelu(SpectralConv2D(f, 3, padding="same", use_bias=False)(x))
    x = _lrelu(SpectralConv2D(f, 3, padding="same", use_bias=False)(x))
    logits = layers.Conv2D(1, 3, padding="same", name="logits")(x)
    return keras.Model(hr, logits, name=name)


def make_discriminator(kind: str = "vgg", hr_size: int = 96, base_filters: int = 64) -> keras.Model:
    """The discriminator `kind`: 'vgg' (the paper's, one logit per crop) or 'unet' (per-pixel logits).

    Args:
        kind: one of KINDS.
        hr_size: HR crop side (the paper's network is built for it; the U-Net takes any multiple of 8).
        base_filters: filters of the first conv (64 in both papers).
    """
    if kind == "vgg":
        return build_discriminator(hr_size, base_filters)
    if kind == "unet":
        return build_unet_discriminator(base_filters)
    raise ValueError(f"unknown discriminator {kind!r}: use {' or '.join(KINDS)}")
