"""ONNX export: onnxruntime answers as the net does, for every activation, depth and dtype; the
estimator converts inside a scikit-learn pipeline; bad input gets a clear error."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("onnx", reason="pip install 'mlp-numba[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="pip install 'mlp-numba[onnx]'")

import onnx  # noqa: E402

from mlp_numba import MLP, TwoLayerNet, reference  # noqa: E402
from mlp_numba._activation_spec import SPECS  # noqa: E402
from mlp_numba.onnx import DEFAULT_OPSET, to_onnx  # noqa: E402

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _agree(net, X, labels, probabilities, dtype):
    expected = net.predict_proba(X)
    assert probabilities.dtype == dtype and probabilities.shape == expected.shape
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(probabilities, expected, rtol=tol, atol=tol)
    # Labels agree except where the two best probabilities are within 1e-6.
    top = np.sort(expected, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-6
    assert np.array_equal(labels[clear], net.predict(X)[clear])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", list(SPECS))
def test_onnxruntime_answers_as_the_net(activation, depth, dtype):
    rng = np.random.default_rng(depth)
    params = {"slope": 0.2} if activation == "leaky_relu" else {}
    params = {"alpha": 0.7} if activation == "elu" else params
    net = MLP(
        10, [16] * depth, 4, std=0.6, activation=activation, activation_params=params,
        dtype=dtype, seed=depth,
    )  # fmt: skip
    session = _session(to_onnx(net))
    for rows in (1, 500):
        X = (3 * rng.standard_normal((rows, 10))).astype(dtype)
        labels, probabilities = session.run(None, {"X": X})
        assert labels.dtype == np.int64
        _agree(net, X, labels, probabilities, dtype)


@pytest.mark.parametrize("cls", [TwoLayerNet, reference.TwoLayerNet, reference.MLP])
def test_every_kind_of_net_exports_and_carries_what_it_knows(cls, tmp_path):
    sizes = (6, 5, 3) if "TwoLayer" in cls.__name__ else (6, (5, 4), 3)
    net = cls(*sizes, std=0.5, activation="tanh", seed=0)
    path = tmp_path / "net.onnx"
    model = to_onnx(net, path)
    onnx.checker.check_model(onnx.load(path))
    assert model.opset_import[0].version == DEFAULT_OPSET
    assert model.producer_name == "mlp-numba"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["class"] == cls.__name__ and meta["activation"] == "tanh"
    assert json.loads(meta["sizes"]) == list(net.sizes) and meta["dtype"] == "float64"
    X = np.random.default_rng(0).standard_normal((50, 6))
    labels, probabilities = _session(onnx.load(path)).run(None, {"X": X})
    _agree(net, X, labels, probabilities, np.float64)


def test_the_float64_erf_is_exact_to_double_precision():
    # The exact GELU in float64 goes through a series (onnxruntime's Erf is float32 only).
    from onnx import TensorProto, helper

    from mlp_numba._onnx_graph import _erf
    from mlp_numba.onnx import _GraphEmitter

    e = _GraphEmitter(np.float64)
    e.node("Identity", [_erf(e, "x")], outputs=["y"])
    spec = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None]) for n in ("x", "y")]
    graph = helper.make_graph(e.nodes, "erf", spec[:1], spec[1:], initializer=e.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    x = np.concatenate([np.linspace(-8, 8, 20001), [0.0, -0.0, 1e-300, 40.0, -40.0]])
    (y,) = _session(model).run(None, {"x": x})
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(y, expected, rtol=0, atol=5e-14)


def test_bad_input_is_refused_clearly(tmp_path):
    from mlp_numba import MLPNumbaClassifier

    net = TwoLayerNet(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match="opset must be from 13"):
        to_onnx(net, opset=5)
    with pytest.raises(TypeError, match="opset must be an integer"):
        to_onnx(net, opset="21")
    with pytest.raises(TypeError, match="model must be a TwoLayerNet"):
        to_onnx(object())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(MLPNumbaClassifier())
    target = tmp_path / "kept.onnx"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        to_onnx(net, tmp_path / "missing" / "x.onnx")
    (tmp_path / "blocked").mkdir()
    with pytest.raises(OSError):
        to_onnx(net, tmp_path / "blocked")  # a folder: replacing it fails
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "kept.onnx"]


skl2onnx = pytest.importorskip("skl2onnx", reason="pip install 'mlp-numba[onnx]'")


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 1, 2]), np.array(["cat", "dog", "emu"]), np.array([7])],
    ids=["integers", "strings", "one class"],
)
@pytest.mark.parametrize("hidden", [None, (12, 8)], ids=["two-layer", "deep"])
def test_a_pipeline_with_the_estimator_converts(labels, hidden):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mlp_numba.onnx  # noqa: F401  (registers the converter)
    from mlp_numba import MLPNumbaClassifier

    rng = np.random.default_rng(1)
    X = rng.standard_normal((240, 6)) * 4 + 2
    y = (
        labels[(X[:, 0] > 2).astype(int) + (X[:, 1] > 3).astype(int)]
        if len(labels) > 1
        else (np.repeat(labels, 240))
    )
    estimator = MLPNumbaClassifier(hidden_layer_sizes=hidden, epochs=20, random_state=0)
    pipe = make_pipeline(StandardScaler(), estimator).fit(X, y)
    model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    onnx.checker.check_model(model)
    got_labels, probabilities = _session(model).run(None, {"X": X})
    assert np.array_equal(got_labels, pipe.predict(X))
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=1e-10, atol=1e-10)


def test_the_command_line_exports_a_model_file_with_its_preprocessing(tmp_path, capsys):
    from sklearn.datasets import load_digits

    from mlp_numba.cli import main
    from mlp_numba.cli._use import _load

    run = tmp_path / "run"
    assert main(["train", "--iterations", "50", "--seed", "3", "-o", str(run), "-q"]) == 0
    out = tmp_path / "digits.onnx"
    assert main(["export", str(run / "model.npz"), "-o", str(out)]) == 0
    assert "input images" in capsys.readouterr().out
    model = onnx.load(out)
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["class"] == "TwoLayerNet" and any(k.startswith("model_file.") for k in meta)
    net, prep = _load(run / "model.npz")
    images = load_digits().images[:300]  # raw 8x8 images, as predict takes them
    labels, probabilities = _session(model).run(None, {"images": images.astype(net.dtype)})
    np.testing.assert_allclose(probabilities, net.predict_proba(prep(images)), rtol=1e-10,
                               atol=1e-10)  # fmt: skip
    assert np.array_equal(labels, net.predict(prep(images)))
    assert main(["export", str(run / "model.npz"), "-o", str(out), "--opset", "3"]) == 2
    assert "opset must be from 13" in capsys.readouterr().err
