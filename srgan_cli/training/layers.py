"""Custom Keras layers of the SRGAN networks: small registered classes, no Lambda, keras.ops only."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="srgan")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel upsampling: (H, W, C*r*r) -> (H*r, W*r, C), TensorFlow's DCR ordering (ONNX DepthToSpace).

    Args:
        factor (int): upscaling factor r. Default: 2.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return ops.depth_to_space(x, self.factor, data_format="channels_last")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.factor
        return (b, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="srgan")
class Rescale(keras.layers.Layer):
    """Affine value mapping y = x * scale + offset (e.g. tanh [-1,1] -> [0,1]), optionally clipped.

    Args:
        scale (float): multiplier.
        offset (float): added after scaling.
        clip (tuple | None): (low, high) bounds applied last, or None.
    """

    def __init__(self, scale=1.0, offset=0.0, clip=None, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))

    def call(self, x):
        y = x * self.scale + self.offset
        return y if self.clip is None else ops.clip(y, self.clip[0], self.clip[1])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset, "clip": self.clip}
