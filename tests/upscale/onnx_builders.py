"""Odd ONNX models for the contract tests: NaN or integer outputs, a rank-2 output, a 1x model, a blurring model."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def make_odd_model(path, kind="plain", scale=4, metadata=None):
    """An NHWC float32 model that upscales by nearest neighbour, then misbehaves as `kind` says.

    Args:
        path: where to save it.
        kind: 'plain' (a valid x`scale` model), 'nan' (every output NaN), 'int' (int32 output), 'rank2' (the
            output reshaped to (pixels, 3)), 'blur' (a 3x3 box blur with zero padding before the upscale: the
            border of a tiny image darkens).
        scale: the nearest-neighbour factor (1: an identity model).
        metadata: custom metadata props.
    """
    inits = [_const("scales", [1.0, 1.0, float(scale), float(scale)]), _const("two", 2.0),
             _const("flat", [-1, 3], np.int64), _const("box", np.full((3, 1, 3, 3), 1 / 9)),
             _const("zero", np.zeros(3))]
    nodes = [helper.make_node("Transpose", ["lr"], ["x"], perm=[0, 3, 1, 2])]
    source = "x"
    if kind == "blur":
        nodes.append(helper.make_node("Conv", ["x", "box", "zero"], ["blurred"], pads=[1, 1, 1, 1], group=3))
        source = "blurred"
    nodes += [helper.make_node("Resize", [source, "", "scales"], ["up"], mode="nearest"),
              helper.make_node("Transpose", ["up"], ["y"], perm=[0, 2, 3, 1])]
    out_type, out_shape = TensorProto.FLOAT, ["N", "H2", "W2", 3]
    if kind == "nan":
        nodes += [helper.make_node("Sub", ["y", "two"], ["negative"]), helper.make_node("Sqrt", ["negative"], ["sr"])]
    elif kind == "int":
        nodes.append(helper.make_node("Cast", ["y"], ["sr"], to=TensorProto.INT32))
        out_type = TensorProto.INT32
    elif kind == "rank2":
        nodes.append(helper.make_node("Reshape", ["y", "flat"], ["sr"]))
        out_shape = ["P", 3]
    else:
        nodes.append(helper.make_node("Identity", ["y"], ["sr"]))
    used = {name for node in nodes for name in node.input}
    inits = [init for init in inits if init.name in used]
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["N", "H", "W", 3])],
                              [helper.make_tensor_value_info("sr", out_type, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, str(path))
    return path
