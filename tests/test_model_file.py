"""Model files: exact round trips, atomic writes, and a clear error for every damaged file."""

import json
import os

import numpy as np
import pytest

from mlp_numba import TwoLayerNet, reference
from mlp_numba.model_file import FORMAT_VERSION, ModelFileError, load_model, save_model


def _data(D=6, n=40, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), rng.integers(0, C, n)


@pytest.mark.parametrize("cls", [TwoLayerNet, reference.TwoLayerNet])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("activation", "activation_params"), [("relu", None), ("leaky_relu", {"slope": 0.3})]
)
def test_round_trip_is_exact(tmp_path, cls, dtype, activation, activation_params):
    X, y = _data()
    net = cls(
        6,
        5,
        3,
        std=0.1,
        activation=activation,
        activation_params=activation_params,
        dtype=dtype,
        seed=1,
    )
    net.train(X, y, X, y, learning_rate=0.1, num_iters=5, batch_size=8)
    path = net.save(tmp_path / "model.npz", metadata={"note": "hi"}, arrays={"mean": X.mean(0)})
    saved = load_model(path, cls)
    back = saved.net
    assert type(back) is cls
    assert (back.sizes, back.activation, back.activation_params, back.dtype) == (
        net.sizes,
        net.activation,
        net.activation_params,
        net.dtype,
    )
    for key, value in net.params.items():
        assert back.params[key].dtype == value.dtype
        assert back.params[key].tobytes() == value.tobytes()
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert saved.metadata == {"note": "hi"}
    np.testing.assert_array_equal(saved.arrays["mean"], X.mean(0))
    # The Generator's state travels too, so training resumes on the same minibatches.
    net.train(X, y, X, y, learning_rate=0.1, num_iters=5, batch_size=8)
    back.train(X, y, X, y, learning_rate=0.1, num_iters=5, batch_size=8)
    assert back.params["W1"].tobytes() == net.params["W1"].tobytes()


def test_loading_a_course_net_leaves_the_global_random_state_alone(tmp_path):
    np.random.seed(0)
    path = TwoLayerNet(4, 10, 3, std=1e-1).save(tmp_path / "course")
    assert path.name == "course.npz"  # the suffix is appended, as np.savez does
    state = np.random.get_state()[1].copy()
    net = TwoLayerNet.load(path)
    assert net._rng is None  # it keeps drawing from the global state, as the course does
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    net = TwoLayerNet(4, 3, 2, seed=0)
    net.save(path)
    before = path.read_bytes()

    def broken_savez(f, **contents):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        TwoLayerNet(4, 3, 2, seed=1).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        net.save(path, metadata={"bad": object()})
    with pytest.raises(TypeError, match="arrays"):
        net.save(path, arrays={"bad": np.array([object()])})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def _rewrite(path, out, **changes):
    """Copy a model file with its header fields or arrays changed."""
    with np.load(path) as archive:
        contents = {k: archive[k] for k in archive.files}
    header = json.loads(str(contents["__mlp_numba__"]))
    for key, value in changes.items():
        if key in contents:
            contents[key] = value
        else:
            header[key] = value
    contents["__mlp_numba__"] = np.array(json.dumps(header))
    np.savez(out, **contents)
    return out


@pytest.fixture
def good_file(tmp_path):
    return TwoLayerNet(4, 3, 2, seed=0).save(tmp_path / "good.npz")


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_file(tmp_path, good_file, cut):
    data = good_file.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match=r"cut\.npz"):
        load_model(bad)


def test_flipped_bytes_in_the_params(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    start = data.index(b"W1.npy") + 200  # inside W1's stored bytes: the zip CRC catches it
    data[start : start + 8] = b"\xff" * 8
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"flipped\.npz"):
        load_model(bad)


def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(ModelFileError, match=r"junk\.npz"):
        load_model(junk)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ModelFileError, match=r"not an \.npz archive"):
        load_model(npy)
    other = tmp_path / "other.npz"
    np.savez(other, W1=np.zeros((2, 2)))
    with pytest.raises(ModelFileError, match="not an mlp-numba model file"):
        load_model(other)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __mlp_numba__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ModelFileError, match=r"pickled\.npz"):
        load_model(pickled)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


def test_newer_format_version_says_to_upgrade(tmp_path, good_file):
    newer = _rewrite(good_file, tmp_path / "newer.npz", format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match="upgrade mlp-numba"):
        load_model(newer)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"W1": np.zeros((5, 3))}, r"params\['W1'\] must have shape"),
        ({"b2": np.zeros(2, np.float32)}, r"params\['b2'\] must be float64"),
        ({"W2": np.full((3, 2), np.nan)}, "NaN or inf"),
        ({"dtype": "int8"}, "dtype"),
        ({"activation": "nope"}, "unknown activation"),
        ({"sizes": [4, 3]}, "sizes"),
        ({"format_version": "1"}, "format_version"),
        ({"random_state": {"bit_generator": "os.system"}}, "random state"),
        ({"metadata": [1, 2]}, "metadata"),
    ],
)
def test_damaged_contents(tmp_path, good_file, change, message):
    bad = _rewrite(good_file, tmp_path / "bad.npz", **change)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


def test_bad_json_header(tmp_path, good_file):
    with np.load(good_file) as archive:
        contents = {k: archive[k] for k in archive.files}
    contents["__mlp_numba__"] = np.array("{not json")
    np.savez(tmp_path / "json.npz", **contents)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(tmp_path / "json.npz")


def test_save_model_checks_its_arguments(tmp_path):
    net = TwoLayerNet(4, 3, 2, seed=0)
    with pytest.raises(TypeError, match="metadata must be a dict"):
        save_model(tmp_path / "m", net, metadata=[1])
    with pytest.raises(TypeError, match="arrays keys"):
        save_model(tmp_path / "m", net, arrays={1: np.zeros(1)})
    with pytest.raises(ValueError, match="W1"):
        net.params["W1"] = net.params["W1"][:2]
    assert not list(tmp_path.iterdir())
