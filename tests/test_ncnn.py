"""ncnn models: a tiny Real-ESRGAN-shaped one, written here, computes the same function as ONNX
(scripts/ncnn_to_onnx.py) and as a Keras model (srgan_cli.training.ncnn, a teacher on a lent GPU)."""

import struct
import sys

import numpy as np
import pytest

from tests.conftest import load_file_module
from tests.training.helpers import REPO

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

RNG = np.random.default_rng(0)
PARAM = """7767517
10 12
Input        in0    0 1 data
Convolution  conv1  1 1 data c1 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,2.000000e-01
Split        split1 1 2 c1 c1_0 c1_1
Convolution  conv2  1 1 c1_0 c2 0=4 1=3 4=1 5=0 6=144
Concat       cat    2 1 c1_1 c2 cat
Convolution  conv3  1 1 cat c3 0=4 1=1 4=0 5=1 6=32 9=1
Eltwise      add1   2 1 c3 c2 e1 0=1 -23301=2,2.000000e-01,1.000000e+00
Interp       up     1 1 e1 u1 0=1 1=2.000000e+00 2=2.000000e+00
BinaryOp     add2   2 1 u1 u1 b1 0=0
Convolution  conv4  1 1 b1 output 0=3 1=3 4=1 5=1 6=108
"""


@pytest.fixture(scope="module")
def script():
    yield load_file_module(REPO / "scripts" / "ncnn_to_onnx.py", "ncnn_to_onnx")
    sys.modules.pop("ncnn_to_onnx", None)


def _weights():
    """conv1 fp16 (+bias), conv2 fp32 (no bias), conv3 fp16 1x1 (+bias), conv4 fp32 (+bias)."""
    shapes = {"conv1": (4, 3, 3, 3), "conv2": (4, 4, 3, 3), "conv3": (4, 8, 1, 1), "conv4": (3, 4, 3, 3)}
    weights = {name: RNG.normal(0, 0.3, shape).astype(np.float32) for name, shape in shapes.items()}
    weights["conv1"] = weights["conv1"].astype(np.float16).astype(np.float32)
    weights["conv3"] = weights["conv3"].astype(np.float16).astype(np.float32)
    biases = {name: RNG.normal(0, 0.1, shapes[name][0]).astype(np.float32) for name in ("conv1", "conv3", "conv4")}
    blob = b""
    for name in shapes:
        if name in ("conv1", "conv3"):
            data = weights[name].astype("<f2").tobytes()
            blob += struct.pack("<I", 0x01306B47) + data + b"\0" * (-len(data) % 4)
        else:
            blob += struct.pack("<I", 0) + weights[name].astype("<f4").tobytes()
        if name in biases:
            blob += biases[name].astype("<f4").tobytes()
    return weights, biases, blob


def _conv(x, w, b=None, pad=1):
    """Reference cross-correlation, (C, H, W) -> (O, H', W')."""
    k = w.shape[-1]
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    h, wd = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = sum(np.einsum("oc,chw->ohw", w[:, :, i, j], x[:, i:i + h, j:j + wd]) for i in range(k) for j in range(k))
    return out + (0 if b is None else b[:, None, None])


def _reference(x, w, b):
    c1 = _conv(x, w["conv1"], b["conv1"])
    c1 = np.where(c1 > 0, c1, 0.2 * c1)
    c2 = _conv(c1, w["conv2"])
    c3 = np.maximum(_conv(np.concatenate([c1, c2]), w["conv3"], b["conv3"], pad=0), 0)
    up = np.repeat(np.repeat(0.2 * c3 + c2, 2, axis=1), 2, axis=2)
    return _conv(up + up, w["conv4"], b["conv4"])


@pytest.fixture
def tiny_ncnn(tmp_path):
    weights, biases, blob = _weights()
    (tmp_path / "tiny.param").write_text(PARAM)
    (tmp_path / "tiny.bin").write_bytes(blob)
    return tmp_path / "tiny.param", weights, biases


def test_the_converted_model_computes_what_the_ncnn_layers_say(script, tiny_ncnn):
    param, weights, biases = tiny_ncnn
    model = script.convert(param, param.with_suffix(".bin"))
    x = RNG.random((2, 3, 5, 7), dtype=np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"data": x})[0]
    assert out.shape == (2, 3, 10, 14)
    for i in range(2):
        np.testing.assert_allclose(out[i], _reference(x[i], weights, biases), atol=1e-4)


def test_the_converted_model_carries_a_contract_srgan_reads(script, tiny_ncnn):
    from srgan_cli.upscale.contract import read_contract

    param, _, _ = tiny_ncnn
    model = script.convert(param, param.with_suffix(".bin"))
    contract = read_contract(ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]))
    assert (contract.layout, contract.value_range, contract.scale) == ("NCHW", (0.0, 1.0), 2)


def test_unknown_layers_and_mismatched_weights_are_refused_by_name(script, tiny_ncnn, tmp_path):
    param, _, _ = tiny_ncnn
    odd = tmp_path / "odd.param"
    odd.write_text(PARAM.replace("BinaryOp     add2", "Pooling      add2"))
    with pytest.raises(ValueError, match="add2: ncnn layer type Pooling"):
        script.convert(odd, param.with_suffix(".bin"))
    longer = tmp_path / "longer.bin"
    longer.write_bytes(param.with_suffix(".bin").read_bytes() + b"\0" * 8)
    with pytest.raises(ValueError, match="8 bytes left over"):
        script.convert(param, longer)


def test_the_keras_model_computes_what_the_ncnn_layers_say(tiny_ncnn):
    pytest.importorskip("keras")
    from srgan_cli.training.ncnn import keras_model

    param, weights, biases = tiny_ncnn
    model = keras_model(param)
    x = RNG.random((2, 5, 7, 3), dtype=np.float32)  # channels last
    out = np.asarray(model(x))
    assert out.shape == (2, 10, 14, 3)
    for i in range(2):
        reference = _reference(x[i].transpose(2, 0, 1), weights, biases).transpose(1, 2, 0)
        np.testing.assert_allclose(out[i], reference, atol=1e-4)


def test_the_keras_model_refuses_what_the_converter_refuses(tiny_ncnn, tmp_path):
    pytest.importorskip("keras")
    from srgan_cli.training.ncnn import keras_model

    param, _, _ = tiny_ncnn
    bilinear = PARAM.replace("up     1 1 e1 u1 0=1", "up     1 1 e1 u1 0=2")
    (tmp_path / "odd.param").write_text(bilinear)
    (tmp_path / "odd.bin").write_bytes(param.with_suffix(".bin").read_bytes())
    with pytest.raises(ValueError, match="up: only nearest Interp"):
        keras_model(tmp_path / "odd.param")
    (tmp_path / "longer.param").write_text(PARAM)
    (tmp_path / "longer.bin").write_bytes(param.with_suffix(".bin").read_bytes() + b"\0" * 4)
    with pytest.raises(ValueError, match="4 bytes left over"):
        keras_model(tmp_path / "longer.param")
