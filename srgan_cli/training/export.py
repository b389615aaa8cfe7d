"""Export a trained generator to ONNX (tf2onnx): [0,1] NHWC contract, named dims, metadata, verified against Keras.

TensorFlow, Keras and ONNX are imported inside the functions that need them: the output checks (`check_output`) run
before any of them loads.
"""

import json
import os
from pathlib import Path

import numpy as np

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.runfolder import STEP_FOLDER, RunFolder
from srgan_cli.upscale.files import write_atomic

OPSET = 17
TOLERANCE = {False: 1e-4, True: 2e-2}  # fp32, fp16 weights
CHECK_SHAPES = ((1, 23, 37, 3), (2, 31, 18, 3))
GENERATOR_SUFFIXES = (".keras", ".h5")  # the saved generators whose config.json lies near them


def config_candidates(path):
    """Where the config.json of a saved generator may lie, in order of preference.

    Args:
        path (Path): a .keras or .weights.h5 file.

    Returns:
        list[Path]: `stem.config.json` beside it, its folder's config.json, the folder above's, and for a checkpoint
        (RUN/checkpoint/step_N/) the run's.
    """
    stem = path.name.removesuffix(".weights.h5").removesuffix(".keras")
    folder = path.parent
    found = [folder / f"{stem}.config.json", folder / "config.json", folder.parent / "config.json"]
    if folder.parent.name == "checkpoint" and STEP_FOLDER.fullmatch(folder.name):
        found.append(folder.parent.parent / "config.json")
    return found


def _config_near(path):
    """The config.json of a saved generator (the first of `config_candidates` that exists), or None."""
    for candidate in config_candidates(path):
        if candidate.is_file():
            return TrainConfig.load(candidate)
    return None


def source_files(source):
    """The files of an export source that its output must never replace.

    Args:
        source (str | Path): a run folder, a .keras or .weights.h5 file, or an .onnx file.

    Returns:
        list[Path]: every file of a run folder but earlier ONNX exports; else the file and its config.json.
    """
    path = Path(source)
    if path.is_dir():
        return [f for f in path.rglob("*") if f.is_file() and f.suffix != ".onnx"]
    near = config_candidates(path) if path.suffix in GENERATOR_SUFFIXES else []
    return [f for f in (path, *near) if f.is_file()]


def check_output(output, sources, overwrite=False):
    """Refuse, before any work, an output that would replace a source file (always) or any file (unless `overwrite`).

    Args:
        output (str | Path): the ONNX file to write.
        sources (Iterable[str | Path | None]): what the export reads: run folders or files (None: ignored).
        overwrite (bool): replace an existing output that is not a source file.

    Raises:
        UsageError: `output` is a file of a source (compared as files: symlinks and hard links included).
        SrganError: `output` exists and `overwrite` is False.
    """
    output = Path(output)
    if not os.path.lexists(output):
        return
    for source in filter(None, sources):
        if output.exists() and any(os.path.samefile(output, f) for f in source_files(source)):
            what = "the input" if os.path.samefile(output, source) else "a file of the input"
            raise UsageError(f"{output}: is {what} {source}; refusing to replace it, choose another --output")
    if not overwrite:
        raise SrganError(f"{output}: output exists (use --overwrite to replace it)")


def write_output(data, output, overwrite=False):
    """Install `data` at `output` atomically (never a partial file).

    Args:
        data (bytes): the serialized model.
        output (str | Path): where it goes.
        overwrite (bool): replace an existing file; False: never, even one that appeared while exporting.

    Raises:
        SrganError: `output` exists (and not `overwrite`) or cannot be written; nothing written then.
    """
    try:
        write_atomic(data, output, overwrite=overwrite)
    except FileExistsError:
        raise SrganError(f"{output}: appeared while exporting; not replaced (use --overwrite to replace it)") from None
    except OSError as err:
        raise SrganError(f"cannot write {output}: {err.strerror or err}") from None


def load_generator(source, which="best"):
    """Generator and its training config from a run folder, a .keras file or a .weights.h5 file.

    Args:
        source (str | Path): run folder, .keras or .weights.h5.
        which (str): in a run folder, 'best' (by validation PSNR, when kept) or 'latest'.

    Returns:
        tuple: (float32 keras.Model generator, TrainConfig or None (a .keras file alone), RunState or None).
    """
    path = Path(source)
    state = None
    if path.is_dir():
        run = RunFolder(path)
        path, state = run.generator_file(which), run.saved_state(which)
    if not path.is_file():
        raise SrganError(f"{source}: no generator found (expected a run folder, .keras or .weights.h5)")
    config = _config_near(path)
    try:
        if path.suffix == ".keras":
            return _float32_copy(_load_keras(path), config, path), config, state
        if config is None:
            raise SrganError(f"{path}: a .weights.h5 needs the run's config.json (or "
                             f"{path.name.removesuffix('.weights.h5')}.config.json) beside it")
        from srgan_cli.training import archs

        generator = archs.build_generator(config.arch, config.arch_params)
        generator.load_weights(path)
        return generator, config, state
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SrganError(f"{path}: cannot load the generator ({str(err).splitlines()[0][:160]})") from None


def _load_keras(path):
    """The model of a .keras file (Keras itself says "File not found" of a truncated or corrupt one).

    Args:
        path (Path): an existing .keras file.

    Raises:
        SrganError: it is not a complete .keras archive, or Keras cannot rebuild the model from it.
    """
    import zipfile

    import keras

    import srgan_cli.training.layers  # noqa: F401  registers the generator's own layers (PixelShuffle, ...) for loading

    if not zipfile.is_zipfile(path):
        raise SrganError(f"{path}: cannot be read as a Keras model (not a complete .keras zip archive)")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as err:
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise SrganError(f"{path}: cannot be read as a Keras model ({detail})") from None


def _float32_copy(model, config, path):
    """Rebuild under the float32 policy (a mixed-precision model would export float16 or bfloat16 layers)."""
    if _compute_dtypes(model) == {"float32"}:
        return model
    if config is None:
        raise SrganError(f"{path}: a mixed-precision .keras file needs its run's config.json beside it")
    from srgan_cli.training import archs

    clean = archs.build_generator(config.arch, config.arch_params)
    clean.set_weights(model.get_weights())
    return clean


def _compute_dtypes(model) -> set[str]:
    """The compute dtypes of a model and every layer in it (a mixed-precision model's own policy may say float32)."""
    dtypes = {model.compute_dtype}
    for layer in getattr(model, "layers", ()):
        dtypes |= _compute_dtypes(layer)
    return dtypes


def fast_variant(generator, config):
    """The same function as the architecture's faster export variant, when it has one and the config is known."""
    from srgan_cli.training import archs

    if config is None or not archs.has_fast_variant(config.arch):
        return generator
    fast = archs.build_generator(config.arch, config.arch_params, fast=True)
    fast.set_weights(archs.fast_weights(config.arch, generator.get_weights()))
    return fast


def with_unit_range(generator):
    """Wrap the tanh generator so it maps [0,1] LR to clipped [0,1] SR (the plain consumer contract)."""
    import keras

    from srgan_cli.training.layers import Rescale

    lr = keras.Input((None, None, 3), name="lr")
    sr = Rescale(0.5, 0.5, clip=(0.0, 1.0), name="sr")(generator(lr))
    return keras.Model(lr, sr, name="srgan")


def _name_dims(model, scale):
    for value, names in ((model.graph.input[0], ("batch", "height", "width")),
                         (model.graph.output[0], ("batch", f"height_x{scale}", f"width_x{scale}"))):
        for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=False):
            dim.dim_param = name


def _rename_output(model, name="sr"):
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
    model.graph.output[0].name = name


def to_onnx(model, scale=4):
    """tf2onnx conversion with a dynamic (batch, height, width) NHWC input named 'lr' and output 'sr'."""
    import logging

    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    spec = (tf.TensorSpec((None, None, None, 3), tf.float32, name="lr"),)
    fn = tf.function(lambda lr: model(lr, training=False))
    onnx_model, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET)
    _rename_output(onnx_model)
    _name_dims(onnx_model, scale)
    return onnx_model


def _producers(graph):
    return {out: node for node in graph.node for out in node.output}


def _prelu_match(add, producers, constants):
    """(x, alpha) if `add` ends tf2onnx's PReLU pattern Add(Relu(x), Mul(Relu(Neg(x)), -alpha)), else None."""
    from onnx import numpy_helper

    pair = [producers.get(name) for name in add.input]
    if None in pair:
        return None
    relu, mul = sorted(pair, key=lambda n: n.op_type != "Relu")
    if (relu.op_type, mul.op_type) != ("Relu", "Mul") or mul.input[1] not in constants:
        return None
    relu_neg = producers.get(mul.input[0])
    neg = producers.get(relu_neg.input[0]) if relu_neg is not None and relu_neg.op_type == "Relu" else None
    if neg is None or neg.op_type != "Neg" or neg.input[0] != relu.input[0]:
        return None
    return relu.input[0], -numpy_helper.to_array(constants[mul.input[1]]), {id(relu), id(mul), id(relu_neg), id(neg)}


def fuse_prelu(onnx_model):
    """Replace tf2onnx's 5-node PReLU expansion by ONNX PRelu: same values, a third less peak memory in ORT."""
    from onnx import helper, numpy_helper

    graph = onnx_model.graph
    producers, constants = _producers(graph), {t.name: t for t in graph.initializer}
    replaced, dropped = {}, set()
    for node in graph.node:
        match = _prelu_match(node, producers, constants) if node.op_type == "Add" else None
        if match:
            x, alpha, parts = match
            slope = f"{node.output[0]}_prelu_slope"
            graph.initializer.append(numpy_helper.from_array(alpha.astype(np.float32), slope))
            replaced[id(node)] = helper.make_node("PRelu", [x, slope], list(node.output), name=f"{node.name}_prelu")
            dropped |= parts
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return len(replaced)


def add_metadata(onnx_model, info):
    for key, value in info.items():
        onnx_model.metadata_props.add(key=key, value=str(value))


def parity(onnx_model, keras_model, seed=0):
    """Largest |ONNX Runtime - Keras| over two odd input sizes."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for shape in CHECK_SHAPES:
        lr = rng.random(shape, dtype=np.float32)
        expected = np.asarray(keras_model(lr, training=False))
        got = session.run(None, {"lr": lr})[0]
        if got.shape != expected.shape:
            raise SrganError(f"export check failed: ONNX output {got.shape}, Keras {expected.shape}")
        diff = float(np.max(np.abs(got - expected)))
        worst = diff if not diff <= worst else worst  # NaN must win, Python's max() would drop it
    return worst


def _fp16(onnx_model):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx_model, keep_io_types=True)
    _topological_sort(converted.graph)  # the converter appends its input Casts at the end
    return converted


def _topological_sort(graph):
    """Reorder graph.node so every node comes after the producers of its inputs (as onnx.checker requires)."""
    known = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    nodes = [type(n)() for n in graph.node]
    for copy, node in zip(nodes, graph.node, strict=False):
        copy.CopyFrom(node)
    ordered = []
    while nodes:
        ready = [n for n in nodes if all(i in known for i in n.input)]
        if not ready:
            raise SrganError("export produced a graph with a cycle or a missing input")
        for node in ready:
            known.update(node.output)
        ordered += ready
        nodes = [n for n in nodes if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def export(source, output, which="best", fp16=False, degrid=0.0, overwrite=False, *, consistency=0):
    """Export a generator to a verified ONNX file.

    Args:
        source (str | Path): run folder, .keras or .weights.h5.
        output (str | Path): .onnx path (written atomically, only after verification).
        which (str): 'best' or 'latest' generator of a run folder.
        fp16 (bool): store float16 weights (GPUs); float32 inputs and outputs stay.
        degrid (float): > 0: the metadata asks `srgan upscale` to degrid the outputs with this sigma in LR pixels
            (`srgan_cli.upscale.degrid`; for adversarial models with a grid).
        overwrite (bool): replace an existing `output` (never a file of `source`).
        consistency (int): > 0: the metadata asks `srgan upscale` to back-project the outputs onto their LR this many
            times where the LR looks clean (`srgan_cli.upscale.consistency`).

    Returns:
        dict: {"max_abs_diff": float, "tolerance": float, "nodes": int}.

    Raises:
        SrganError: `output` exists (without `overwrite`) or is a file of `source`, the generator cannot be loaded,
            or the export check fails; nothing is written then.
    """
    import onnx

    from srgan_cli.training.precision import float32_policy

    check_output(output, [source], overwrite)
    with float32_policy():  # the copies built here compute in float32 even after a mixed-precision run in process
        generator, config, state = load_generator(source, which)
        scale = measured_scale(generator)
        model = with_unit_range(generator)
        onnx_model = to_onnx(with_unit_range(fast_variant(generator, config)), scale)  # checked below against `model`
    fuse_prelu(onnx_model)
    if fp16:
        onnx_model = _fp16(onnx_model)
    info = {"scale": scale, "layout": "NHWC", "value_range": "0,1",
            "input": "lr: float32 RGB [0,1] (batch,height,width,3)",
            "output": f"sr: float32 RGB [0,1] (batch,{scale}*height,{scale}*width,3)", "source": str(source),
            "architecture": _architecture(config, generator), "precision": "fp16" if fp16 else "fp32"}
    if config:
        info.update({"arch": config.arch, "arch_params": json.dumps(config.arch_params, sort_keys=True),
                     "phase": config.phase, "degradation": config.degradation,
                     "content_loss": config.content_loss if config.phase == "gan" else f"pixel {config.pixel_loss}",
                     "steps": state.step if state else ""})
    if degrid:
        info["degrid"] = f"{degrid:g}"
    if consistency:
        info["consistency"] = str(consistency)
    add_metadata(onnx_model, info)
    onnx.checker.check_model(onnx_model, full_check=True)
    diff = parity(onnx_model, model)
    if not diff <= TOLERANCE[fp16]:  # also catches NaN
        raise SrganError(f"export check failed: ONNX Runtime differs from Keras by {diff:.3g} "
                         f"(tolerance {TOLERANCE[fp16]:g}); nothing written")
    write_output(onnx_model.SerializeToString(), output, overwrite)
    return {"max_abs_diff": diff, "tolerance": TOLERANCE[fp16], "nodes": len(onnx_model.graph.node)}


def _architecture(config, generator):
    if config is None:
        return f"{generator.name}, {generator.count_params()} parameters (a .keras file without its config)"
    from srgan_cli.training import archs

    return archs.get(config.arch).describe(archs.params_of(config.arch, config.arch_params))


def measured_scale(generator):
    """The generator's upscaling factor, from one forward pass on an 8x8 input."""
    return int(generator(np.zeros((1, 8, 8, 3), np.float32), training=False).shape[1]) // 8
