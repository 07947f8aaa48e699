"""Data set readers: real MNIST when present, and small files in each format written here."""

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from mlp_numba import datasets
from mlp_numba.datasets import _cifar, _download, _idx, load_cifar10, load_mnist, prepare, read_idx

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array):
    code = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_mnist(folder, n_train=12, n_test=6, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for part, array in arrays.items():
        data = idx_bytes(array)
        name = IDX_NAMES[part] + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reader_round_trip(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    X_train, y_train, _X_test, y_test = load_mnist(tmp_path)
    np.testing.assert_array_equal(X_train, arrays["train_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert X_train.shape == (12, 28, 28)


def test_idx_reader_converts_big_endian_types(tmp_path):
    values = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    (tmp_path / "ints").write_bytes(idx_bytes(values))
    out = read_idx(tmp_path / "ints", ndim=2)
    np.testing.assert_array_equal(out, values)
    assert out.dtype == np.dtype("=i4")


GOOD = idx_bytes(np.zeros((4, 28, 28), np.uint8))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "truncated IDX file"),
        (b"\x08\x03" + GOOD[2:], "bad magic number"),
        (b"\x00\x00\x07\x03" + GOOD[4:], "bad magic number"),
        (GOOD[:4] + GOOD[4:10], "truncated IDX header"),
        (GOOD[:-5], "truncated"),
        (GOOD + b"extra", "longer than its header says"),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes(4), "expected a 3-dimensional"),
        (gzip.compress(GOOD)[:-30], "damaged gzip stream"),
    ],
)
def test_malformed_idx_files_name_the_file(tmp_path, data, message):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_image_and_label_counts_must_agree(tmp_path):
    write_mnist(tmp_path)
    labels = tmp_path / (IDX_NAMES["train_labels"] + ".gz")
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(11, np.uint8))))
    with pytest.raises(ValueError, match=r"12 images but .*11 labels") as info:
        load_mnist(tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    labels.write_bytes(gzip.compress(idx_bytes(np.full(12, 10, np.uint8))))
    with pytest.raises(ValueError, match="labels must be 0-9"):
        load_mnist(tmp_path)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="unknown data set 'svhn'; valid names: digits"):
        prepare("svhn")


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST not found at {MNIST_DIR}")
def test_real_mnist():
    X_train, y_train, X_test, _y_test = load_mnist(MNIST_DIR)
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_train).tolist() == counts
    # The checksums a download is verified with are those of these files' content.
    for part, (md5, of) in _idx.RESOURCES["mnist"].items():
        path = MNIST_DIR / (IDX_NAMES[part] + ".gz")
        assert of == "gunzipped"
        assert hashlib.md5(gzip.decompress(path.read_bytes())).hexdigest() == md5


# ---- CIFAR-10 ------------------------------------------------------------------------------


def write_cifar(folder, n=8, protocol=pickle.HIGHEST_PROTOCOL, bytes_keys=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*_cifar.TRAIN_BATCHES, _cifar.TEST_BATCH):
        batch = {
            "batch_label": f"{name} of 5",
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        if bytes_keys:  # as Python 2 wrote them, read with encoding="bytes"
            batch = {k.encode(): v for k, v in batch.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)


def course_load_cifar10(root):
    """The course's loader, on trusted files (plain pickle), as the oracle."""
    xs, ys = [], []
    for b in range(1, 6):
        with open(os.path.join(root, f"data_batch_{b}"), "rb") as f:
            d = pickle.load(f, encoding="latin1")
        X = d["data"].reshape(len(d["labels"]), 3, 32, 32).transpose(0, 2, 3, 1).astype("float")
        xs.append(X)
        ys.append(np.array(d["labels"]))
    with open(os.path.join(root, "test_batch"), "rb") as f:
        d = pickle.load(f, encoding="latin1")
    Xte = d["data"].reshape(len(d["labels"]), 3, 32, 32).transpose(0, 2, 3, 1).astype("float")
    return np.concatenate(xs), np.concatenate(ys), Xte, np.array(d["labels"])


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar_matches_the_course_loader(tmp_path, protocol, bytes_keys):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, protocol=protocol, bytes_keys=bytes_keys)
    ours = load_cifar10(tmp_path)  # the parent folder works too
    if not bytes_keys:
        for a, b in zip(ours, course_load_cifar10(folder), strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    assert ours[0].shape == (40, 32, 32, 3) and ours[2].shape == (8, 32, 32, 3)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "payload",
    [
        lambda marker: Evil(marker),
        lambda marker: {"data": Evil(marker), "labels": []},
    ],
)
def test_hostile_pickle_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(payload(marker)))
    with pytest.raises(ValueError, match=r"refusing .*system") as info:
        _cifar.load_batch(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_cifar_batches_that_are_not_batches(tmp_path):
    path = tmp_path / "data_batch_1"
    for content, message in [
        (pickle.dumps([1, 2]), "holds a list"),
        (pickle.dumps({"data": np.zeros((2, 3072)), "labels": [0, 1]}), "uint8 array"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}), "2 images"),
        (pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [12]}), "0-9"),
        (pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]})[:-20], "not a"),
        (b"garbage", "not a valid CIFAR-10 batch"),
    ]:
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            _cifar.load_batch(path)


def test_cifar_prepare_follows_the_course_notebook(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, n=20)
    data = prepare("cifar10", tmp_path, num_validation=10, num_test=5)
    # The course's get_CIFAR10_data with num_training=90, num_validation=10, num_test=5.
    X_train, y_train, X_test, y_test = course_load_cifar10(folder)
    X_val, y_val = X_train[90:100], y_train[90:100]
    X_train, y_train, X_test, y_test = X_train[:90], y_train[:90], X_test[:5], y_test[:5]
    mean_image = np.mean(X_train, axis=0)
    X_train -= mean_image
    X_val -= mean_image
    X_test -= mean_image
    np.testing.assert_array_equal(data.X_train, X_train.reshape(90, -1))
    np.testing.assert_array_equal(data.X_val, X_val.reshape(10, -1))
    np.testing.assert_array_equal(data.X_test, X_test.reshape(5, -1))
    np.testing.assert_array_equal(data.y_val, y_val)
    assert data.preprocessing.image_shape == (32, 32, 3)


def test_prepare_splits_are_reproducible_by_seed(tmp_path):
    write_mnist(tmp_path, n_train=50)
    a = prepare("mnist", tmp_path, num_validation=10, seed=3, dtype=np.float32)
    b = prepare("mnist", tmp_path, num_validation=10, seed=3, dtype=np.float32)
    c = prepare("mnist", tmp_path, num_validation=10, seed=4, dtype=np.float32)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert not np.array_equal(a.y_val, c.y_val) or not np.array_equal(a.X_val, c.X_val)
    assert a.X_train.dtype == np.float32 and a.X_train.shape == (40, 784)
    np.testing.assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-6)
    assert float(np.abs(a.X_train).max()) <= 1.0  # scaled to [0, 1] before centring
    raw_test = load_mnist(tmp_path)[2]
    np.testing.assert_array_equal(a.preprocessing(raw_test), a.X_test)
    with pytest.raises(ValueError, match="num_validation must leave training rows"):
        prepare("mnist", tmp_path, num_validation=50)
    with pytest.raises(ValueError, match="784-value inputs"):
        a.preprocessing(np.zeros((2, 8, 8)))


def test_digits_needs_no_download():
    pytest.importorskip("sklearn")
    data = prepare("digits")
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (1297, 250, 250)
    assert data.num_classes == 10 and data.num_features == 64


def test_digits_are_scikit_learns_read_without_importing_it():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    images, target = datasets._bundled_digits()
    expected = sklearn_datasets.load_digits()
    np.testing.assert_array_equal(images, expected.images)
    np.testing.assert_array_equal(target, expected.target)
    code = (
        "import sys; from mlp_numba.datasets import load_digits; X, y, Xt, yt = load_digits(); "
        "print(X.shape, Xt.shape, X.dtype, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["(1547,", "8,", "8)", "(250,", "8,", "8)", "uint8", "False"]


# ---- downloads -----------------------------------------------------------------------------


@contextlib.contextmanager
def serve(folder):
    """An HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_the_checksum_and_keeps_nothing_bad(tmp_path, capsys):
    served, cache = tmp_path / "served", tmp_path / "cache"
    served.mkdir()
    payload = os.urandom(300_000)
    (served / "blob.bin").write_bytes(payload)
    good = hashlib.md5(payload).hexdigest()
    with serve(served) as url:
        bad = _download.Resource("blob.bin", (url + "blob.bin",), "0" * 32)
        with pytest.raises(ValueError, match="checksum mismatch"):
            _download.fetch(bad, cache)
        assert list(cache.iterdir()) == []  # no partial or temporary file left
        missing = _download.Resource("nothing.bin", (url + "nothing.bin",), good)
        with pytest.raises(OSError, match="404"):
            _download.fetch(missing, cache)
        ok = _download.Resource("blob.bin", (url + "nothing.bin", url + "blob.bin"), good)
        path = _download.fetch(ok, cache)  # the second mirror serves it
    assert path.read_bytes() == payload
    assert [p.name for p in cache.iterdir()] == ["blob.bin"]
    assert "downloading blob.bin" in capsys.readouterr().err
    assert _download.fetch(ok, cache) == path  # verified copy present: no network needed


def test_load_mnist_downloads_into_the_data_home(tmp_path, monkeypatch):
    served = tmp_path / "served"
    arrays = write_mnist(served)
    sums = {
        part: (hashlib.md5(idx_bytes(a)).hexdigest(), "gunzipped") for part, a in arrays.items()
    }
    monkeypatch.setitem(_idx.RESOURCES, "mnist", sums)
    monkeypatch.setenv("MLP_NUMBA_DATA", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError):
        load_mnist()  # nothing is downloaded unless asked
    with serve(served) as url:
        monkeypatch.setitem(_idx.MIRRORS, "mnist", (url,))
        X_train, _, _, y_test = load_mnist(download=True, progress=False)
    np.testing.assert_array_equal(X_train, arrays["train_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    assert len(list((tmp_path / "home" / "mnist").iterdir())) == 4


def test_cifar_download_unpacks_only_the_batches(tmp_path, monkeypatch):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        evil = tarfile.TarInfo("../escaped")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"
    with serve(served) as url:
        resource = _download.Resource(archive.name, (url + archive.name,), md5)
        monkeypatch.setattr(_cifar, "ARCHIVE", resource)
        X_train, *_ = load_cifar10(root, download=True, progress=False)
    assert X_train.shape == (40, 32, 32, 3)
    assert not (tmp_path / "escaped").exists() and not (root / "escaped").exists()
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(
        (*_cifar.TRAIN_BATCHES, _cifar.TEST_BATCH)
    )


def test_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MLP_NUMBA_DATA", str(tmp_path))
    assert datasets.data_home() == tmp_path
    monkeypatch.delenv("MLP_NUMBA_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert datasets.data_home() == tmp_path / "xdg" / "mlp_numba"


def test_data_home_and_downloads_say_which_extra_they_need(monkeypatch, tmp_path):
    import sys

    monkeypatch.delenv("MLP_NUMBA_DATA", raising=False)
    monkeypatch.setitem(sys.modules, "platformdirs", None)
    monkeypatch.setitem(sys.modules, "pooch", None)
    with pytest.raises(ImportError, match=r"need platformdirs: pip install 'mlp-numba\[data\]'"):
        datasets.data_home()
    resource = _download.Resource("blob.bin", ("http://127.0.0.1:9/blob.bin",), "0" * 32)
    with pytest.raises(ImportError, match=r"need pooch: pip install 'mlp-numba\[data\]'"):
        _download.fetch(resource, tmp_path)
    assert list(tmp_path.iterdir()) == []
