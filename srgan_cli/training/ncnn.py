"""Real-ESRGAN-style ncnn model files (.param + .bin): their parser, and the network as a Keras model, so a lent
GPU runs such a model (Real-ESRGAN x4plus, BSD-3-Clause) as a distillation teacher under any Keras backend.

Only the layers Real-ESRGAN's ncnn models use are known: Input, Convolution (with an optional ReLU or leaky ReLU),
Split, Concat, Eltwise (a weighted sum), BinaryOp (add, sub, mul of two blobs) and Interp (nearest, integer factor).
`scripts/ncnn_to_onnx.py` turns the same files into ONNX.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FP16_TAG = 0x01306B47
CONCAT_AXES = {0: -1, 1: 1, 2: 2}  # ncnn's (C, H, W) axes in a channels-last batch
KNOWN_LAYERS = {"Input", "Split", "Convolution", "Concat", "Eltwise", "BinaryOp", "Interp"}
BINARY_OPS = ("add", "sub", "mul")  # ncnn's BinaryOp operation 0, 1, 2


@dataclass
class Layer:
    """One line of an ncnn .param file."""

    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, list[float]] = field(default_factory=dict)

    def get(self, key: int, default: float) -> float:
        return self.params.get(key, [default])[0]


def parse_param(text: str) -> list[Layer]:
    """The layers of an ncnn .param file (magic line, counts line, then one layer a line)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ValueError("not an ncnn .param file (no 7767517 magic)")
    return [_parse_layer(words) for words in lines[2:]]


def _parse_layer(words: list[str]) -> Layer:
    kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
    inputs, outputs = words[4:4 + n_in], words[4 + n_in:4 + n_in + n_out]
    params: dict[int, list[float]] = {}
    for item in words[4 + n_in + n_out:]:
        key, value = item.split("=", 1)
        if int(key) <= -23300:  # an array: -23300-k=count,v1,v2,...
            params[-int(key) - 23300] = [float(v) for v in value.split(",")[1:]]
        else:
            params[int(key)] = [float(value)]
    return Layer(kind, name, inputs, outputs, params)


class Weights:
    """Reads an ncnn .bin in layer order: tagged (fp16 or fp32) weight blobs, raw fp32 biases."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def tagged(self, count: int) -> np.ndarray:
        tag = int(np.frombuffer(self.data, "<u4", 1, self.offset)[0])
        self.offset += 4
        if tag == FP16_TAG:
            values = np.frombuffer(self.data, "<f2", count, self.offset).astype(np.float32)
            self.offset += (2 * count + 3) // 4 * 4
            return values
        if tag != 0:
            raise ValueError(f"weights stored with tag {tag:#x} (quantized): only fp16 and fp32 are known")
        return self.raw(count)

    def raw(self, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, "<f4", count, self.offset).copy()
        self.offset += 4 * count
        return values


@dataclass
class NcnnModel:
    """An ncnn model read whole: its layers, the reader of its weights, and its input blob."""

    layers: list[Layer]
    weights: Weights
    input_blob: str

    @property
    def scale(self) -> int:
        """The upscaling factor: the product of the Interp factors."""
        return int(np.prod([layer.get(1, 1) for layer in self.layers if layer.kind == "Interp"]))

    def body(self) -> Iterator[Layer]:
        """The layers after the Input, in order. Raises ValueError at the first of a type that is not known."""
        for layer in self.layers:
            if layer.kind not in KNOWN_LAYERS:
                raise ValueError(f"{layer.name}: ncnn layer type {layer.kind} is not known")
            if layer.kind != "Input":
                yield layer


def read_model(param: Path, weights: Path) -> NcnnModel:
    """The .param's layers and a reader of the .bin beside them.

    Raises:
        ValueError: not an ncnn .param, or not exactly one Input layer.
    """
    layers = parse_param(param.read_text())
    inputs = [layer.outputs[0] for layer in layers if layer.kind == "Input"]
    if len(inputs) != 1:
        raise ValueError(f"{param}: {len(inputs)} Input layers; an SR model has one")
    return NcnnModel(layers, Weights(weights.read_bytes()), inputs[0])


def check_consumed(reader: Weights, weights: Path) -> None:
    """Raises ValueError when the layers did not read the whole .bin: it is another model's."""
    if reader.offset != len(reader.data):
        raise ValueError(f"{weights}: {len(reader.data) - reader.offset} bytes left over; not this .param's weights")


@dataclass
class Convolution:
    """One Convolution layer's geometry and weights (OIHW kernel, fp32)."""

    kernel: np.ndarray
    bias: np.ndarray | None
    pad: int
    stride: int
    dilation: int
    activation: int
    slope: float


def read_convolution(layer: Layer, weights: Weights) -> Convolution:
    """The next Convolution's weights from the .bin, with its parameters.

    Raises:
        ValueError: an activation other than none, ReLU or leaky ReLU.
    """
    out_ch, kernel = int(layer.get(0, 0)), int(layer.get(1, 0))
    kernel_h = int(layer.get(11, kernel))
    size = int(layer.get(6, 0))
    w = weights.tagged(size).reshape(out_ch, size // (out_ch * kernel * kernel_h), kernel_h, kernel)
    bias = weights.raw(out_ch) if layer.get(5, 0) else None
    activation = int(layer.get(9, 0))
    if activation not in (0, 1, 2):
        raise ValueError(f"{layer.name}: activation type {activation} is not known")
    slope = layer.params[10][0] if activation == 2 else 0.0
    return Convolution(w, bias, int(layer.get(4, 0)), int(layer.get(3, 1)), int(layer.get(2, 1)), activation, slope)


def check_eltwise(layer: Layer) -> list[float]:
    """An Eltwise sum's coefficients (1 each when not given). Raises ValueError for another Eltwise operation."""
    if int(layer.get(0, 1)) != 1:
        raise ValueError(f"{layer.name}: only Eltwise sum is known")
    return layer.params.get(1, [1.0] * len(layer.inputs))


def check_interp(layer: Layer) -> tuple[int, int]:
    """A nearest Interp's (height, width) factors. Raises ValueError for any other resize."""
    if int(layer.get(0, 0)) != 1 or 3 in layer.params or 4 in layer.params:
        raise ValueError(f"{layer.name}: only nearest Interp by a scale factor is known")
    return int(layer.get(1, 1)), int(layer.get(2, 1))


def check_binary(layer: Layer) -> str:
    """A BinaryOp's operation ('add', 'sub' or 'mul'). Raises ValueError for any other, or not on two blobs."""
    op = int(layer.get(0, 0))
    if op not in range(len(BINARY_OPS)) or layer.get(1, 0) or len(layer.inputs) != 2:
        raise ValueError(f"{layer.name}: only BinaryOp add/sub/mul of two blobs is known")
    return BINARY_OPS[op]


class KerasBuilder:
    """Keras layers for an ncnn model's blobs, channels last; Split outputs are aliases of their input."""

    def __init__(self, keras: Any, weights: Weights) -> None:
        self.keras, self.weights = keras, weights
        self.blobs: dict[str, Any] = {}

    def convolution(self, layer: Layer) -> Any:
        conv = read_convolution(layer, self.weights)
        layers, x = self.keras.layers, self.blobs[layer.inputs[0]]
        size = conv.kernel.shape[2:]
        same = conv.stride == 1 and size[0] == size[1] and conv.pad * 2 == (size[0] - 1) * conv.dilation
        if conv.pad and not same:
            x = layers.ZeroPadding2D(conv.pad)(x)
        keras_conv = layers.Conv2D(conv.kernel.shape[0], size, strides=conv.stride, dilation_rate=conv.dilation,
                                   padding="same" if same else "valid", use_bias=conv.bias is not None,
                                   name=layer.name)
        x = keras_conv(x)
        keras_conv.set_weights([conv.kernel.transpose(2, 3, 1, 0)] + ([conv.bias] if conv.bias is not None else []))
        if conv.activation == 1:
            return layers.ReLU()(x)
        if conv.activation == 2:
            return layers.LeakyReLU(negative_slope=conv.slope)(x)
        return x

    def eltwise(self, layer: Layer) -> Any:
        terms = [self.blobs[blob] if coeff == 1.0 else self.keras.layers.Rescaling(coeff)(self.blobs[blob])
                 for blob, coeff in zip(layer.inputs, check_eltwise(layer), strict=True)]
        return self.keras.layers.Add()(terms) if len(terms) > 1 else terms[0]

    def binary(self, layer: Layer) -> Any:
        layers = self.keras.layers
        kind = {"add": layers.Add, "sub": layers.Subtract, "mul": layers.Multiply}[check_binary(layer)]
        return kind()([self.blobs[blob] for blob in layer.inputs])

    def interp(self, layer: Layer) -> Any:
        return self.keras.layers.UpSampling2D(check_interp(layer), interpolation="nearest")(self.blobs[layer.inputs[0]])

    def concat(self, layer: Layer) -> Any:
        axis = CONCAT_AXES[int(layer.get(0, 0))]
        return self.keras.layers.Concatenate(axis=axis)([self.blobs[b] for b in layer.inputs])

    def add(self, layer: Layer) -> None:
        if layer.kind == "Split":
            self.blobs.update({out: self.blobs[layer.inputs[0]] for out in layer.outputs})
            return
        build = {"Convolution": self.convolution, "Eltwise": self.eltwise, "BinaryOp": self.binary,
                 "Interp": self.interp, "Concat": self.concat}[layer.kind]
        self.blobs[layer.outputs[0]] = build(layer)


def keras_model(param: Path, output_blob: str = "output") -> Any:
    """The ncnn model (.param, the .bin beside it) as a Keras model: (N, H, W, 3) in [0,1] -> (N, sH, sW, 3).

    Args:
        param: the .param file.
        output_blob: the ncnn blob the model's output is.

    Raises:
        ValueError: a layer or weight format that is not known, or a .bin of another size.
    """
    import keras

    weights = param.with_suffix(".bin")
    model = read_model(param, weights)
    builder = KerasBuilder(keras, model.weights)
    builder.blobs[model.input_blob] = inputs = keras.Input((None, None, 3), name="lr")
    for layer in model.body():
        builder.add(layer)
    check_consumed(model.weights, weights)
    return keras.Model(inputs, builder.blobs[output_blob], name=param.stem)
