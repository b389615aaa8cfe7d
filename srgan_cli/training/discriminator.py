"""The SRGAN discriminator of Ledig et al. (2017): VGG-style strided convolutions to one real/fake logit."""

import keras
from keras import layers


def discriminator_block(x, filters, strides, batch_norm=True):
    """conv3x3 (+BN) + LeakyReLU(0.2)."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    return layers.LeakyReLU(0.2)(x)


def build_discriminator(hr_size=96, base_filters=64, name="discriminator"):
    """SRGAN discriminator: HR crop in [-1,1] -> one real/fake logit.

    Args:
        hr_size (int): side of the square HR crops it judges. Default: 96.
        base_filters (int): filters of the first block (64 in the paper); doubled every two blocks up to 8x.
        name (str): model name.

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
