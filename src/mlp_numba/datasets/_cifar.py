"""CIFAR-10 from the official ``cifar-10-batches-py`` pickles, read without running any code.

The batches are Python pickles of a dict holding a uint8 ``data`` array and a ``labels`` list.
Unpickling can call any importable function, so the unpickler here admits only the few NumPy
names that rebuild an ndarray; anything else in a file raises before it is called.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from ._download import Resource, data_home, fetch

try:  # NumPy 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
ARCHIVE = Resource(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "c58f30108f718f92721af3b95e74349a",
)
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _latin1_bytes(text, encoding="latin1"):
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# What an ndarray's pickle refers to (NumPy 1 and 2 names); nothing else is ever looked up.
_ALLOWED = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing {module}.{name}: a CIFAR-10 batch holds only NumPy arrays, "
                "lists and strings"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id: not a CIFAR-10 batch")


def load_batch(path, dtype=np.float64):
    """One batch file as ``(X, y)``: images (N, 32, 32, 3) of ``dtype``, labels (N,) int64.

    Raises
    ------
    ValueError
        Naming the file, when it is not a CIFAR-10 batch or refers to anything but NumPy arrays.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as exc:  # fmt: skip
        raise ValueError(f"{path}: not a valid CIFAR-10 batch ({exc})") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a valid CIFAR-10 batch (holds a {type(batch).__name__})")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != 3072)
    ):
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: 'labels' must be a list of integers ({exc})") from exc
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be 0-9")
    # As the course: channel-major rows -> (N, 32, 32, 3) channel-last images.
    X = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1).astype(dtype)
    return X, labels


def load_cifar10(root=None, *, download=False, dtype=np.float64, progress=True):
    """Read CIFAR-10 as the course's ``load_CIFAR10`` does.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The ``cifar-10-batches-py`` folder, or a folder that contains it. Default:
        ``<data home>/cifar10``.
    download : bool, default False
        Fetch the official archive (MD5-verified) and unpack the batches into ``root``.
    dtype : float64 (default) or float32
        The course converts the images to float64.
    progress : bool, default True

    Returns
    -------
    X_train : ndarray, shape (50000, 32, 32, 3)
    y_train : ndarray of int64, shape (50000,)
    X_test : ndarray, shape (10000, 32, 32, 3)
    y_test : ndarray of int64, shape (10000,)

    Examples
    --------
    >>> from mlp_numba.datasets import load_cifar10
    >>> X_train, y_train, X_test, y_test = load_cifar10("cifar-10-batches-py")  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (50000, 32, 32, 3)
    """
    root = data_home() / "cifar10" if root is None else Path(root)
    folder = root / FOLDER if (root / FOLDER).is_dir() else root
    names = (*TRAIN_BATCHES, TEST_BATCH)
    if download and not all((folder / n).is_file() for n in names):
        folder = root / FOLDER
        _unpack(fetch(ARCHIVE, root, progress=progress), folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"cifar10: {', '.join(missing)} not found in {folder}; pass the "
            f"{FOLDER} folder, or download=True (--download) to fetch it"
        )
    train = [load_batch(folder / n, dtype) for n in TRAIN_BATCHES]
    X_test, y_test = load_batch(folder / TEST_BATCH, dtype)
    X_train = np.concatenate([X for X, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return X_train, y_train, X_test, y_test


def _unpack(archive, folder):
    """Copy the six batch files out of the archive; no other member is ever written."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{FOLDER}/{n}" for n in (*TRAIN_BATCHES, TEST_BATCH)}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name in wanted and member.isfile():
                with (
                    tar.extractfile(member) as src,
                    atomic_write(folder / Path(member.name).name) as dst,
                ):
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
