"""Losses of SRResNet and SRGAN: pixel, VGG content and adversarial, written with keras.ops only."""

import keras
from keras import ops

from srgan_cli.errors import SrganError

VGG_LAYERS = {"vgg54": "block5_conv4", "vgg22": "block2_conv2"}
VGG_SCALE = 1.0 / 12.75 ** 2  # the paper rescales VGG feature maps by 1/12.75
VGG_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG_MEAN_BGR = (103.939, 116.779, 123.68)


def pixel_loss(kind):
    """Mean pixel loss between SR and HR: 'mse' (the paper's) or 'l1'."""
    if kind == "mse":
        return lambda hr, sr: ops.mean(ops.square(hr - sr))
    if kind == "l1":
        return lambda hr, sr: ops.mean(ops.abs(hr - sr))
    raise SrganError(f"unknown pixel loss {kind!r}: use mse or l1")


def _load_vgg19(weights):
    try:
        return keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as err:  # Keras raises a bare Exception on "URL fetch failure"
        raise SrganError(
            f"cannot load VGG19 ImageNet weights ({str(err).splitlines()[0][:120]}): run once on a machine with "
            f"internet so Keras caches {VGG_FILE}, or pass --vgg-weights /path/to/{VGG_FILE}; "
            "or train with --content-loss mse") from None


@keras.saving.register_keras_serializable(package="srgan")
class VggPreprocess(keras.layers.Layer):
    """Maps [-1,1] RGB to VGG's caffe input: 0..255 BGR minus the ImageNet mean."""

    def call(self, x):
        rgb255 = (x + 1.0) * 127.5
        bgr = ops.flip(rgb255, axis=-1)
        return bgr - ops.convert_to_tensor(VGG_MEAN_BGR, dtype=x.dtype)


def build_feature_extractor(content_loss="vgg54", weights="imagenet"):
    """Frozen VGG19 truncated at the content layer, taking [-1,1] RGB.

    Args:
        content_loss (str): 'vgg54' (block5_conv4) or 'vgg22' (block2_conv2).
        weights (str | None): 'imagenet', a path to the Keras notop .h5 file, or None (random; tests only).

    Returns:
        keras.Model: non-trainable feature extractor.
    """
    vgg = _load_vgg19(weights)
    x = keras.Input((None, None, 3))
    features = keras.Model(vgg.input, vgg.get_layer(VGG_LAYERS[content_loss]).output)(VggPreprocess()(x))
    extractor = keras.Model(x, features, name=f"{content_loss}_features")
    extractor.trainable = False
    return extractor


def content_loss_fn(kind, extractor=None):
    """Content loss: VGG feature MSE scaled by 1/12.75^2 ('vgg54', 'vgg22') or pixel MSE ('mse', SRGAN-MSE)."""
    if kind == "mse":
        return pixel_loss("mse")

    def vgg_loss(hr, sr):
        return VGG_SCALE * ops.mean(ops.square(extractor(hr, training=False) - extractor(sr, training=False)))
    return vgg_loss


def _bce_logits(labels_value, logits):
    labels = ops.full_like(logits, labels_value)
    return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


def discriminator_loss(real_logits, fake_logits):
    """BCE on logits: real crops -> 1, generated -> 0."""
    return _bce_logits(1.0, real_logits) + _bce_logits(0.0, fake_logits)


def adversarial_loss(fake_logits):
    """The generator's adversarial loss, -log D(G(lr)) in its non-saturating BCE form."""
    return _bce_logits(1.0, fake_logits)
