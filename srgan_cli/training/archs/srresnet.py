"""The SRResNet generator of Ledig et al. (2017), the registry's "srresnet" architecture."""

import itertools

import keras
import numpy as np
from keras import layers

from srgan_cli.training.layers import PixelShuffle


def _prelu(x, name=None):
    return layers.PReLU(shared_axes=[1, 2], name=name)(x)


def residual_block(x, channels, momentum):
    """conv3x3-BN-PReLU-conv3x3-BN plus the identity."""
    y = layers.Conv2D(channels, 3, padding="same")(x)
    y = layers.BatchNormalization(momentum=momentum)(y)
    y = _prelu(y)
    y = layers.Conv2D(channels, 3, padding="same")(y)
    y = layers.BatchNormalization(momentum=momentum)(y)
    return layers.Add()([x, y])


def upsample_block(x, channels):
    """x2 sub-pixel stage: conv3x3 to 4*channels, pixel shuffle, PReLU."""
    x = layers.Conv2D(channels * 4, 3, padding="same")(x)
    x = PixelShuffle(2)(x)
    return _prelu(x)


def build_generator(blocks=16, channels=64, bn_momentum=0.99, name="generator", fast=False):
    """SRResNet generator: LR RGB in [0,1] of any size -> 4x SR RGB in [-1,1] (tanh).

    Args:
        blocks (int): number of residual blocks B. Default: 16.
        channels (int): feature channels. Default: 64.
        bn_momentum (float): BatchNormalization moving-average momentum. Default: 0.99.
        name (str): model name.
        fast (bool): inference variant computing the last 9x9 conv at 2x resolution in sub-pixel phases
            (see `phase_tail_weights`); the same function, faster on CPUs. Default: False.

    Returns:
        keras.Model: functional model with input "lr" of shape (None, None, None, 3).
    """
    lr = keras.Input((None, None, 3), name="lr")
    x = layers.Conv2D(channels, 9, padding="same")(lr)
    skip = x = _prelu(x)
    for _ in range(blocks):
        x = residual_block(x, channels, bn_momentum)
    x = layers.Conv2D(channels, 3, padding="same")(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.Add()([skip, x])
    if not fast:
        for _ in range(2):
            x = upsample_block(x, channels)
        sr = layers.Conv2D(3, 9, padding="same", activation="tanh", name="sr")(x)
        return keras.Model(lr, sr, name=name)
    x = upsample_block(x, channels)
    x = _prelu(layers.Conv2D(channels * 4, 3, padding="same")(x))
    x = layers.Conv2D(12, 5, padding="same", activation="tanh")(x)
    return keras.Model(lr, PixelShuffle(2, name="sr")(x), name=name)


def describe(params):
    """One line for the ONNX metadata."""
    return (f"SRResNet generator (Ledig et al. 2017), {params['blocks']} residual blocks, {params['channels']} "
            "channels, x4 pixel shuffle")


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
    *head, alpha, kernel, bias = weights
    channels = kernel.shape[2]
    new_kernel = np.zeros((5, 5, 4 * channels, 12), kernel.dtype)
    for dy, dx, ey, ex, a, b in itertools.product(range(2), range(2), range(2), range(2), range(5), range(5)):
        u, v = 2 * (a - 2) + ey - dy, 2 * (b - 2) + ex - dx
        if -4 <= u <= 4 and -4 <= v <= 4:
            out, inp = (dy * 2 + dx) * 3, (ey * 2 + ex) * channels
            new_kernel[a, b, inp:inp + channels, out:out + 3] = kernel[u + 4, v + 4]
    return [*head, np.tile(alpha, (1, 1, 4)), new_kernel, np.tile(bias, 4)]
