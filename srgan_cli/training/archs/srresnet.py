"""The SRResNet generator of Ledig et al. (2017), the registry's "srresnet" architecture."""

import itertools

import keras
import numpy as np
from keras import layers

from srgan_cli.training.layers import PixelShuffle

ACTIVATIONS = ("prelu", "relu")


def _prelu(x, name=None):
    return layers.PReLU(shared_axes=[1, 2], name=name)(x)


def _activation(x, activation):
    """The body's and upsamplers' activation: PReLU (the paper's) or ReLU (fuses into int8 convs)."""
    return _prelu(x) if activation == "prelu" else layers.ReLU()(x)


def residual_block(x, channels, momentum, activation="prelu"):
    """conv3x3-BN-activation-conv3x3-BN plus the identity."""
    y = layers.Conv2D(channels, 3, padding="same")(x)
    y = layers.BatchNormalization(momentum=momentum)(y)
    y = _activation(y, activation)
    y = layers.Conv2D(channels, 3, padding="same")(y)
    y = layers.BatchNormalization(momentum=momentum)(y)
    return layers.Add()([x, y])


def upsample_block(x, channels, activation="prelu"):
    """x2 sub-pixel stage: conv3x3 to 4*channels, pixel shuffle, activation."""
    x = layers.Conv2D(channels * 4, 3, padding="same")(x)
    x = PixelShuffle(2)(x)
    return _activation(x, activation)


def build_generator(blocks=16, channels=64, bn_momentum=0.99, name="generator", fast=False, activation="prelu"):
    """SRResNet generator: LR RGB in [0,1] of any size -> 4x SR RGB in [-1,1] (tanh).

    Args:
        blocks (int): number of residual blocks B. Default: 16.
        channels (int): feature channels. Default: 64.
        bn_momentum (float): BatchNormalization moving-average momentum. Default: 0.99.
        name (str): model name.
        fast (bool): inference variant computing the last 9x9 conv at 2x resolution in sub-pixel phases
            (see `phase_tail_weights`); the same function, faster on CPUs. Default: False.
        activation (str): "prelu" (the paper's) or "relu" in the residual blocks and upsamplers; the head keeps
            its PReLU. ReLU lets an int8 model fuse every activation into its convs. Default: "prelu".

    Returns:
        keras.Model: functional model with input "lr" of shape (None, None, None, 3).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    lr = keras.Input((None, None, 3), name="lr")
    x = layers.Conv2D(channels, 9, padding="same")(lr)
    skip = x = _prelu(x)
    for _ in range(blocks):
        x = residual_block(x, channels, bn_momentum, activation)
    x = layers.Conv2D(channels, 3, padding="same")(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.Add()([skip, x])
    if not fast:
        for _ in range(2):
            x = upsample_block(x, channels, activation)
        sr = layers.Conv2D(3, 9, padding="same", activation="tanh", name="sr")(x)
        return keras.Model(lr, sr, name=name)
    x = upsample_block(x, channels, activation)
    x = _activation(layers.Conv2D(channels * 4, 3, padding="same")(x), activation)
    x = layers.Conv2D(12, 5, padding="same", activation="tanh")(x)
    return keras.Model(lr, PixelShuffle(2, name="sr")(x), name=name)


def describe(params):
    """One line for the ONNX metadata."""
    relu = ", ReLU body" if params.get("activation") == "relu" else ""
    return (f"SRResNet generator (Ledig et al. 2017), {params['blocks']} residual blocks, {params['channels']} "
            f"channels, x4 pixel shuffle{relu}")


def phase_tail_weights(weights):
    """Map generator weights to the fast variant (the last conv in sub-pixel phases).

    The original tail is shuffle -> PReLU -> 9x9 conv (64 -> 3) at 4x resolution; its 3 output channels waste most
    of a vectorised conv kernel. PReLU commutes with the shuffle (alpha tiled over the 4 phases), and a 9x9 conv
    at 4x equals a 5x5 conv at 2x from the 4 input phases to 4 output phases (12 channels), then a shuffle.

    Args:
        weights (list): `build_generator(...).get_weights()`.

    Returns:
        list: weights for `build_generator(..., fast=True)`.
    """
    *head, kernel, bias = weights
    alpha = head.pop() if head[-1].ndim == 3 else None  # the last PReLU's (1, 1, C) slopes; none with ReLU
    channels = kernel.shape[2]
    new_kernel = np.zeros((5, 5, 4 * channels, 12), kernel.dtype)
    for dy, dx, ey, ex, a, b in itertools.product(range(2), range(2), range(2), range(2), range(5), range(5)):
        u, v = 2 * (a - 2) + ey - dy, 2 * (b - 2) + ex - dx
        if -4 <= u <= 4 and -4 <= v <= 4:
            out, inp = (dy * 2 + dx) * 3, (ey * 2 + ex) * channels
            new_kernel[a, b, inp:inp + channels, out:out + 3] = kernel[u + 4, v + 4]
    tiled = [] if alpha is None else [np.tile(alpha, (1, 1, 4))]
    return [*head, *tiled, new_kernel, np.tile(bias, 4)]
