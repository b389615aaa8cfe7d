"""ONNX graph surgery for int8: conv exclusions, PRelu folding, per-channel ranges, the tiered last conv, the float
residual stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.training.quantize.recipe import FIRST, LAST


def open_session(model: Any, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, str | bytes) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

def _initializers(model: Any) -> dict[str, Any]:
    return {t.name: t for t in model.graph.initializer}


def _array(model: Any, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(_initializers(model)[name])


def _consumers(model: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _producers(model: Any) -> dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def resolve_convs(model: Any, names: Sequence[str], strict: bool = False) -> list[str]:
    """Node names of `Recipe.exclude` entries ('conv:I', 'first', 'last' or names), each once, in graph order.

    Args:
        model: the ONNX model.
        names: the entries.
        strict: refuse a 'conv:I' past the model's convs too (else skipped: the defaults fit a small model).

    Raises:
        SrganError: the graph has no conv, or an entry names none.
    """
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    if not convs:
        raise SrganError("the model has no Conv to quantize")
    wanted = set()
    for entry in names:
        entry = {FIRST: "conv:0", LAST: "conv:-1"}.get(entry, entry)
        index = entry[5:] if entry.startswith("conv:") else None
        if index is not None and index.lstrip("-").isdigit() and -len(convs) <= int(index) < len(convs):
            wanted.add(convs[int(index)])
        elif entry in convs:
            wanted.add(entry)
        elif index is None or strict:
            raise SrganError(f"float conv {entry!r}: no such conv in the model ({len(convs)} convs)")
    return [c for c in convs if c in wanted]


def channel_ranges(model: Any, tensors: Sequence[str], crops: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) [min, max] of float32 `tensors` over the crops: {name: (2, C) array}."""
    from onnx import helper

    probe = type(model)()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(t) for t in tensors if t not in existing)
    session = open_session(probe)
    names = [o.name for o in session.get_outputs()]
    wanted = set(tensors)
    ranges: dict[str, np.ndarray] = {}
    for crop in crops:
        for name, value in zip(names, session.run(None, {session.get_inputs()[0].name: crop}), strict=True):
            if name not in wanted:
                continue
            flat = np.moveaxis(value, 1, 0).reshape(value.shape[1], -1)
            now = np.stack([flat.min(1), flat.max(1)])
            old = ranges.get(name)
            ranges[name] = now if old is None else np.stack([np.minimum(old[0], now[0]), np.maximum(old[1], now[1])])
    return ranges


def _slope(name: str) -> Any:
    """The derivative magnitude of what follows the last conv (tanh: values far out matter less)."""
    return (lambda y: 1.0 / np.cosh(y) ** 2) if name == "Tanh" else (lambda y: np.ones_like(y))


def segment_bounds(low: float, high: float, tiers: int, slope: Any) -> np.ndarray:
    """Boundaries of `tiers` segments of [low, high] with equal worst output step (width x largest slope in it)."""
    grid = np.linspace(low, high, 4097)
    weight = slope(grid)

    def cut(step: float) -> list[float]:
        """Greedy widest segments of worst step <= `step`; more than `tiers` of them when it is too small."""
        bounds, start = [low], 0
        while start < len(grid) - 1 and len(bounds) <= tiers + 1:
            cost = (grid[start:] - grid[start]) * np.maximum.accumulate(weight[start:])
            start = min(start + max(1, int(np.searchsorted(cost, step, side="right")) - 1), len(grid) - 1)
            bounds.append(float(grid[start]))
        return bounds

    lo_step, hi_step = 0.0, float((high - low) * weight.max())
    for _ in range(40):
        middle = (lo_step + hi_step) / 2
        lo_step, hi_step = (lo_step, middle) if len(cut(middle)) <= tiers + 1 else (middle, hi_step)
    bounds = cut(hi_step)
    bounds += [high] * (tiers + 1 - len(bounds))
    bounds[-1] = high
    return np.asarray(bounds, dtype=np.float64)


def tier_last_conv(model: Any, conv: Any, crops: Sequence[np.ndarray], tiers: int) -> tuple[str, list[str]]:
    """Rewrite the last conv into `tiers` copies covering value segments, summed back by a float 1x1 conv.

    Copy t computes clip(y - a_t, 0, w_t) / w_t, y the conv's output and [a_t, a_t + w_t] segment t; quantized
    to uint8 with scale 1/255 it keeps 255 levels per segment. Summing w_t * copy_t + a_0 gives y back, clipped to
    the calibrated range.

    Returns:
        (the tiered tensor, to quantize with scale 1/255; the names of the float nodes added).
    """
    from onnx import helper, numpy_helper

    y = conv.output[0]
    low, high = channel_ranges(model, [y], crops)[y]
    span = float(high.max() - low.min()) or 1.0
    following = [n.op_type for n in _consumers(model).get(y, [])]
    bounds = segment_bounds(float(low.min()) - 0.01 * span, float(high.max()) + 0.01 * span, tiers,
                            _slope(following[0] if len(following) == 1 else ""))
    widths = np.maximum(np.diff(bounds), 1e-6)
    weight = _array(model, conv.input[1])
    channels = weight.shape[0]
    bias = _array(model, conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(channels, np.float32)
    tiered, clipped = f"{y}_tiers", f"{y}_tiers_clipped"
    names = {"w": f"{conv.name}_tiers_w", "b": f"{conv.name}_tiers_b", "sw": f"{conv.name}_sum_w",
             "sb": f"{conv.name}_sum_b", "lo": f"{conv.name}_tiers_0", "hi": f"{conv.name}_tiers_1"}
    summing = np.zeros((channels, channels * tiers, 1, 1), np.float32)
    for t in range(tiers):
        summing[np.arange(channels), t * channels + np.arange(channels), 0, 0] = widths[t]
    arrays = {"w": np.concatenate([weight / w for w in widths]),
              "b": np.concatenate([(bias - a) / w for a, w in zip(bounds[:-1], widths, strict=True)]),
              "sw": summing, "sb": np.full(channels, bounds[0]), "lo": np.float32(0.0), "hi": np.float32(1.0)}
    model.graph.initializer.extend(numpy_helper.from_array(np.asarray(arrays[k], np.float32), names[k])
                                   for k in arrays)
    conv.input[:] = [conv.input[0], names["w"], names["b"]]
    conv.output[0] = tiered
    clip = helper.make_node("Clip", [tiered, names["lo"], names["hi"]], [clipped], name=f"{conv.name}_tiers_clip")
    total = helper.make_node("Conv", [clipped, names["sw"], names["sb"]], [y], name=f"{conv.name}_tiers_sum")
    nodes = list(model.graph.node)
    at = next(i for i, n in enumerate(nodes) if n.name == conv.name) + 1
    del model.graph.node[:]
    model.graph.node.extend([*nodes[:at], clip, total, *nodes[at:]])
    return tiered, [clip.name, total.name]


def fold_prelu(model: Any, keep: Sequence[str]) -> int:
    """Fold each PRelu between two convs into them, so that it runs in int8: PRelu(z) = relu(z) - a * relu(-z).

    The first conv emits [z, -z] followed by a Relu (the quantizer folds it into the conv's uint8 output, zero point
    0); the second takes both halves with weights [W, -a * W]. The same function, with twice the MACs in both convs
    but no float PRelu and no Q/DQ pair between them. Convs named in `keep` (left in float32) are left alone.

    Returns:
        The number of PRelus folded.
    """
    from onnx import numpy_helper

    inits, users, producers = _initializers(model), _consumers(model), _producers(model)
    folded = 0
    for prelu in [n for n in model.graph.node if n.op_type == "PRelu"]:
        first, after = producers.get(prelu.input[0]), users.get(prelu.output[0], [])
        if not (first is not None and first.op_type == "Conv" and len(first.input) == 3 and len(after) == 1
                and after[0].op_type == "Conv" and len(users[prelu.input[0]]) == 1 and prelu.input[1] in inits
                and not {first.name, after[0].name} & set(keep) and _plain(first) and _plain(after[0])):
            continue
        w1, b1, w2 = (_array(model, name) for name in (first.input[1], first.input[2], after[0].input[1]))
        slope = np.broadcast_to(_array(model, prelu.input[1]).reshape(-1), (w1.shape[0],))
        for name, value in ((first.input[1], np.concatenate([w1, -w1])), (first.input[2], np.concatenate([b1, -b1])),
                            (after[0].input[1], np.concatenate([w2, -w2 * slope[None, :, None, None]], axis=1))):
            inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
        prelu.op_type = "Relu"
        del prelu.input[1:]
        stale = {first.output[0], prelu.output[0]}  # their channel count doubled
        for info in [v for v in model.graph.value_info if v.name in stale]:
            model.graph.value_info.remove(info)
        folded += 1
    return folded


def _plain(conv: Any) -> bool:
    """A conv without groups (whose weights fold channel by channel)."""
    return all(a.name != "group" or a.i == 1 for a in conv.attribute)


def keep_float_stream(model: Any) -> int:
    """Let float nodes (residual Adds, PRelu, ...) read a tensor itself rather than its quantized copy.

    Only conv outputs must stay quantized (ONNX Runtime fuses DQ-Conv-Q into one int8 conv); any other tensor that
    was quantized for a conv's sake reaches its float consumers unrounded, so quantization noise does not build up
    along the residual stream.

    Returns:
        The number of inputs rewired.
    """
    producers = _producers(model)
    changed = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear":
                continue
            source = producers.get(q.input[0])
            if source is not None and source.op_type != "Conv":
                node.input[i] = q.input[0]
                changed += 1
    _drop_unused(model)
    return changed


def _drop_unused(model: Any) -> None:
    """Remove nodes whose outputs nobody reads (repeatedly), then unused initializers."""
    graph = model.graph
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        copies = [type(n)() for n in keep]
        for copy, node in zip(copies, keep, strict=True):
            copy.CopyFrom(node)
        del graph.node[:]
        graph.node.extend(copies)
    used = {i for n in graph.node for i in n.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def drop_node(model: Any, name: str) -> None:
    """Remove a one-input pass-through node (the tiers' Clip, redundant once its input is uint8 in [0, 1])."""
    node = next((n for n in model.graph.node if n.name == name), None)
    if node is None:
        return
    for other in model.graph.node:
        other.input[:] = [node.input[0] if i == node.output[0] else i for i in other.input]
    model.graph.node.remove(node)

