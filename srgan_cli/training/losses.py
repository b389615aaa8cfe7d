"""Losses of SRResNet and SRGAN: pixel, VGG content and adversarial, written with keras.ops only."""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from srgan_cli.errors import SrganError

VGG_LAYERS = {"vgg54": "block5_conv4", "vgg22": "block2_conv2"}
VGG_SCALE = 1.0 / 12.75 ** 2  # the paper rescales VGG feature maps by 1/12.75
VGG_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
RANDOM = "random"  # --vgg-weights random: fixed He-normal weights, no download (Liu et al. 2021)
RANDOM_SEED = 0
# RMS of the random network's features on BSD100 crops (measured): its content loss is the feature MSE
# relative to this, so bicubic scores about 0.05 and the shipped srresnet_x4 about 0.03 at either layer.
RANDOM_FEATURE_RMS = {"vgg54": 60.4, "vgg22": 72.5}


def pixel_loss(kind):
    """Mean pixel loss between SR and HR: 'mse' (the paper's) or 'l1'."""
    if kind == "mse":
        return lambda hr, sr: ops.mean(ops.square(hr - sr))
    if kind == "l1":
        return lambda hr, sr: ops.mean(ops.abs(hr - sr))
    raise SrganError(f"unknown pixel loss {kind!r}: use mse or l1")


def _random_vgg19():
    """VGG19 with fixed random He-normal kernels and zero biases, the same on every machine and every resume."""
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(RANDOM_SEED)
    for layer in vgg.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            std = np.sqrt(2.0 / np.prod(kernel.shape[:3]))
            layer.set_weights([rng.normal(0.0, std, kernel.shape).astype("float32"), np.zeros_like(bias)])
    return vgg


def _load_vgg19(weights):
    if weights == RANDOM:
        return _random_vgg19()
    try:
        return keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as err:  # Keras raises a bare Exception on "URL fetch failure"
        raise SrganError(
            f"cannot load VGG19 ImageNet weights ({str(err).splitlines()[0][:120]}): run once on a machine with "
            f"internet so Keras caches {VGG_FILE}, or pass --vgg-weights /path/to/{VGG_FILE}; "
            "or use --vgg-weights random (fixed random weights, no download)") from None


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
        weights (str | None): 'imagenet', a path to the Keras notop .h5 file, 'random' (fixed seeded random
            weights: the "generic perceptual loss" of Liu et al., CVPR 2021) or None (unseeded random; tests only).

    Returns:
        keras.Model: non-trainable feature extractor.
    """
    vgg = _load_vgg19(weights)
    x = keras.Input((None, None, 3))
    features = keras.Model(vgg.input, vgg.get_layer(VGG_LAYERS[content_loss]).output)(VggPreprocess()(x))
    extractor = keras.Model(x, features, name=f"{content_loss}_features")
    extractor.trainable = False
    return extractor


def feature_scale(kind, weights):
    """Factor on the VGG feature MSE: the paper's 1/12.75^2, or 1/RMS^2 for the random network."""
    if weights == RANDOM and kind in RANDOM_FEATURE_RMS:
        return 1.0 / RANDOM_FEATURE_RMS[kind] ** 2
    return VGG_SCALE  # also for 'mse', which has no features to scale


def content_loss_fn(kind, extractor=None, scale=VGG_SCALE):
    """Content loss: VGG feature MSE times `scale` ('vgg54', 'vgg22') or pixel MSE ('mse', SRGAN-MSE)."""
    if kind == "mse":
        return pixel_loss("mse")

    def vgg_loss(hr, sr):
        return scale * ops.mean(ops.square(extractor(hr, training=False) - extractor(sr, training=False)))
    return vgg_loss


def lattice_loss(hr, sr, scale=4, window=8):
    """Mean square of the error's part that repeats with the LR pixel lattice: the 4-px grid, penalised alone.

    In every window of `window` x `window` LR pixels, the error is averaged per sub-pixel phase (scale x scale of
    them) and the phase means' deviation from their average is squared. A grid of amplitude a costs about a^2;
    noise of variance s^2 only about s^2 / window^2, so texture stays free while the grid is not.

    Args:
        hr, sr (tensor): (B, H, W, C) with H and W multiples of scale * window.
    """
    error = sr - hr
    height, width, channels = error.shape[1], error.shape[2], error.shape[3]
    rows, cols = height // (scale * window), width // (scale * window)
    error = ops.reshape(error, (-1, rows, window, scale, cols, window, scale, channels))
    phase_means = ops.mean(error, axis=(2, 5))  # (B, rows, scale, cols, scale, C)
    return ops.mean(ops.var(phase_means, axis=(2, 4)))


def lowfreq_loss(hr, sr, scale=4):
    """Mean square error of the scale x scale block means: brightness and colour drift, blind to texture inside a block.

    The VGG content loss does not pin colour, so an adversarial run can drift in tint; this term pins it without
    charging the fine texture the adversarial loss is there to add.
    """
    def block_means(x):
        return ops.average_pool(x, scale, strides=scale, padding="valid")
    return ops.mean(ops.square(block_means(sr) - block_means(hr)))


def colour_loss(hr: Any, sr: Any) -> Any:
    """Mean absolute error of each crop's per-channel mean: the tint or brightness drift of a whole crop.

    A drift of d costs d (not d^2, as in lowfreq_loss, where a drift of half a level is lost among the block errors),
    so it is pulled to zero even when it is small; texture and the error's local structure cost nothing.
    """
    return ops.mean(ops.abs(ops.mean(sr - hr, axis=(1, 2))))


def overshoot_loss(hr, sr, window=5):
    """Mean square of how far SR leaves the photo's own local range (its window x window min and max): halos.

    Texture, edges and blur inside that range cost nothing; a bright or dark line beside an edge (the ringing of
    over-sharpening, metrics.edge_overshoot) does.
    """
    high = ops.max_pool(hr, window, strides=1, padding="same")
    low = -ops.max_pool(-hr, window, strides=1, padding="same")
    return ops.mean(ops.square(ops.relu(sr - high) + ops.relu(low - sr)))


def _bce_logits(labels_value, logits):
    labels = ops.full_like(logits, labels_value)
    return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


def discriminator_loss(real_logits, fake_logits):
    """BCE on logits: real crops -> 1, generated -> 0."""
    return _bce_logits(1.0, real_logits) + _bce_logits(0.0, fake_logits)


def adversarial_loss(fake_logits):
    """The generator's adversarial loss, -log D(G(lr)) in its non-saturating BCE form."""
    return _bce_logits(1.0, fake_logits)


def _relativistic(real_logits: Any, fake_logits: Any, real_label: float) -> Any:
    """BCE of real logits minus the mean fake logit against `real_label`, plus fake minus mean real against the other.

    The means run over everything given (batch and, for per-pixel logits, pixels), as BasicSR's torch.mean does.
    """
    return (_bce_logits(real_label, real_logits - ops.mean(fake_logits))
            + _bce_logits(1.0 - real_label, fake_logits - ops.mean(real_logits)))


def ragan_discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """ESRGAN's relativistic average GAN loss for D (Wang et al. 2018): real above the average fake, fake below."""
    return _relativistic(real_logits, fake_logits, 1.0)


def ragan_generator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """The generator's side of the relativistic average loss: the labels swapped; real logits carry no gradient."""
    return _relativistic(ops.stop_gradient(real_logits), fake_logits, 0.0)


def _bce_generator_loss(real_logits: Any, fake_logits: Any) -> Any:
    return adversarial_loss(fake_logits)


def gan_losses(kind: str) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    """The (discriminator, generator) loss pair of a --gan-loss, each f(real_logits, fake_logits) -> scalar.

    Args:
        kind: 'bce' (the paper's; the generator's ignores real_logits) or 'ragan' (ESRGAN's relativistic average).
            Logits may be (B, 1) or per-pixel (B, H, W, 1).
    """
    if kind == "bce":
        return discriminator_loss, _bce_generator_loss
    if kind == "ragan":
        return ragan_discriminator_loss, ragan_generator_loss
    raise SrganError(f"unknown GAN loss {kind!r}: use bce or ragan")
