"""Tiny ONNX super-resolution models built with onnx.helper, for tests (no training, no downloads)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _conv(name, x, y, cin, cout, kernel, rng, nodes, inits):
    w = rng.normal(0, 0.02, (cout, cin, kernel, kernel)).astype(np.float32)
    for c in range(min(cin, cout)):
        w[c, c, kernel // 2, kernel // 2] += 1.0  # near identity: outputs stay in a sane range
    inits.append(numpy_helper.from_array(w, f"{name}_w"))
    inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"))
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [y], pads=[kernel // 2] * 4))


def make_sr_model(path=None, scale=4, depth=1, kernel=3, metadata=None, layout="NHWC", channels=3, seed=0,
                  value_range=(0.0, 1.0)):
    """An x`scale` SR model: `depth` convs of `kernel` (receptive-field radius depth*(kernel//2)), pixel shuffle.

    Args:
        path: where to save (returns the ModelProto when None).
        metadata (dict | None): custom metadata props, e.g. {"scale": "4"}.
        layout (str): NHWC (srgan's contract) or NCHW.
        channels (int): input channels (3 for a valid model; others to test refusals).
        value_range (tuple): the value range the model works in (its pixels are rescaled inside).
    """
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "lr"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["lr"], ["x0"], perm=[0, 3, 1, 2]))
        x = "x0"
    for i in range(depth):
        cout = 3 * scale * scale if i == depth - 1 else channels
        _conv(f"c{i}", x, f"h{i}", channels, cout, kernel, rng, nodes, inits)
        x = f"h{i}"
    # the last conv emits each colour channel r*r times: DepthToSpace (DCR) turns it into a nearest-like upscale
    w = np.zeros((3 * scale * scale, 3 * scale * scale, 1, 1), np.float32)
    for c in range(3):
        for k in range(scale * scale):
            w[k * 3 + c, c, 0, 0] = 1.0
    inits.append(numpy_helper.from_array(w, "spread_w"))
    nodes.append(helper.make_node("Conv", [x, "spread_w"], ["spread"]))
    nodes.append(helper.make_node("DepthToSpace", ["spread"], ["up"], blocksize=scale, mode="DCR"))
    lo, hi = value_range
    inits += [numpy_helper.from_array(np.array(v, np.float32), n) for v, n in ((lo, "lo"), (hi, "hi"))]
    nodes.append(helper.make_node("Clip", ["up", "lo", "hi"], ["clipped"]))
    out_shape = ["N", "H4", "W4", 3] if layout == "NHWC" else ["N", 3, "H4", "W4"]
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["clipped"], ["sr"], perm=[0, 2, 3, 1]))
    else:
        nodes.append(helper.make_node("Identity", ["clipped"], ["sr"]))
    in_shape = ["N", "H", "W", channels] if layout == "NHWC" else ["N", channels, "H", "W"]
    graph = helper.make_graph(nodes, "tiny_sr", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=str(value))
    if path is None:
        return model
    onnx.save(model, str(path))
    return path
