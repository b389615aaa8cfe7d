"""Inference efficiency: FLOPs per output pixel (from the ONNX graph) x measured pixels/s vs ONNX Runtime's own
dense float32 MatMul rate, measured in the same run: the fraction of the machine's peak the upscaler reaches."""

import re

import numpy as np
import onnx
from _common import best_time, model_path, parser, report, test_image
from onnx import TensorProto, helper, shape_inference

from srgan_cli.upscale.inference import Upscaler
from srgan_cli.upscale.session import open_session


def conv_flops(model_file, height, width):
    """FLOPs (2 per multiply-add) of all Conv/ConvTranspose/MatMul nodes for one (1, height, width, 3) input."""
    model = onnx.load(str(model_file))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, height, width, 3), strict=False):
        dim.ClearField("dim_param")
        dim.dim_value = value
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    flops = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            cout, cin_per_group, kh, kw = weights[node.input[1]]
            flops += 2 * out[0] * out[2] * out[3] * cout * cin_per_group * kh * kw
    return flops


def paper_flops_per_lr_pixel(model_file):
    """FLOPs per LR pixel of the paper's SRResNet (plain 9x9 tail), from the export's architecture metadata."""
    meta = {p.key: p.value for p in onnx.load(str(model_file), load_external_data=False).metadata_props}
    found = re.search(r"(\d+) residual blocks, (\d+) channels", meta.get("architecture", ""))
    if not found:
        return None
    b, c = map(int, found.groups())
    macs = 81 * 3 * c + b * 2 * 9 * c * c + 9 * c * c + 9 * c * 4 * c + 4 * 9 * c * 4 * c + 16 * 81 * c * 3
    return 2 * macs


def gemm_rate(n=1024, repeat=3, threads=None):
    """FLOP/s of ONNX Runtime's float32 MatMul on n x n matrices (the dense peak we compare against)."""
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session, _ = open_session(model.SerializeToString(), "cpu", threads)
    a, b = (np.random.rand(n, n).astype(np.float32) for _ in range(2))
    return 2 * n ** 3 / best_time(lambda: session.run(None, {"a": a, "b": b}), repeat)


def main():
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=128, help="LR side of the test input")
    args = p.parse_args()
    path = model_path(args)
    upscaler = Upscaler(path, device="cpu", tile=0)
    image = test_image(args.size, args.size)
    seconds = best_time(lambda: upscaler.run_window(image), args.repeat)
    out_pixels = args.size * args.size * upscaler.scale ** 2
    graph_flops = conv_flops(path, args.size, args.size)
    paper = paper_flops_per_lr_pixel(path)
    flops = paper * args.size * args.size if paper else graph_flops  # useful work: the paper architecture's
    peak = gemm_rate(repeat=args.repeat)
    achieved = flops / seconds
    rows = [{"what": "upscaler", "seconds": seconds, "out_MP_per_s": out_pixels / seconds / 1e6,
             "GFLOP_per_s": achieved / 1e9},
            {"what": "ORT MatMul 1024^3", "seconds": 2 * 1024 ** 3 / peak, "out_MP_per_s": "-",
             "GFLOP_per_s": peak / 1e9}]
    report("efficiency", rows, args, {"MFLOP_per_output_pixel": flops / out_pixels / 1e6,
                                      "graph_MFLOP_per_output_pixel": graph_flops / out_pixels / 1e6,
                                      "fraction_of_peak": achieved / peak, "target": 0.70,
                                      "ceiling_out_MP_per_s": peak / (flops / out_pixels) / 1e6})


if __name__ == "__main__":
    main()
