"""Data sets for the net: CIFAR-10, MNIST, Fashion-MNIST and the bundled 8x8 digits.

``load_*`` functions return the raw ``(X_train, y_train, X_test, y_test)`` images as the course's
loaders do; :func:`prepare` turns a data set into train / validation / test rows the way the
course's notebook does (float conversion, a validation split, the mean training image
subtracted, rows flattened). Nothing is downloaded unless ``download=True`` is passed.

Examples
--------
>>> from mlp_numba.datasets import prepare
>>> data = prepare("digits")  # doctest: +SKIP
>>> data.X_train.shape, data.X_val.shape, data.X_test.shape  # doctest: +SKIP
((1297, 64), (250, 64), (250, 64))
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ._cifar import load_cifar10
from ._download import data_home
from ._idx import load_mnist, read_idx
from ._prepare import Preprocessing, Split, split_and_preprocess

__all__ = [
    "DATASETS",
    "Preprocessing",
    "Split",
    "data_home",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_test_split",
    "prepare",
    "read_idx",
]

# name -> (default validation rows, default test rows, pixel scale, the course's split order)
_SETTINGS = {
    "digits": (250, None, 1 / 16, False),
    "mnist": (5000, None, 1 / 255, False),
    "fashion-mnist": (5000, None, 1 / 255, False),
    "cifar10": (1000, 1000, 1.0, True),
}
#: The names :func:`load_dataset`, :func:`prepare` and ``mlp-numba --dataset`` accept.
DATASETS = tuple(_SETTINGS)


def load_fashion_mnist(root=None, *, download=False, progress=True):
    """Read Fashion-MNIST: the same IDX files and shapes as :func:`load_mnist`."""
    return load_mnist(root, download=download, kind="fashion-mnist", progress=progress)


def _bundled_digits():
    """The digits' images (N, 8, 8) and labels, as ``sklearn.datasets.load_digits`` gives them.

    Read from the file scikit-learn ships, found without importing scikit-learn (which
    imports much of SciPy: seconds, against milliseconds for the file); through scikit-learn
    when a release moves the file.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install 'mlp-numba[cli]'"
        )
    for folder in spec.submodule_search_locations or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return digits.images, digits.target


def load_digits(test_size=250):
    """scikit-learn's bundled 8x8 digits (1,797 images, no download) as uint8 images 0-16.

    The last ``test_size`` images of a fixed shuffle are the test set.

    Returns
    -------
    X_train, y_train, X_test, y_test : images (N, 8, 8) uint8 and labels int64
    """
    images, target = _bundled_digits()
    order = np.random.default_rng(0).permutation(len(target))
    images = images[order].astype(np.uint8)
    labels = target[order].astype(np.int64)
    cut = len(labels) - test_size
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def load_dataset(name, root=None, *, download=False, progress=True):
    """The raw ``(X_train, y_train, X_test, y_test)`` of the data set ``name`` (see DATASETS)."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(root, download=download, kind=name, progress=progress)
    if name == "cifar10":
        return load_cifar10(root, download=download, dtype=np.uint8, progress=progress)
    raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")


def load_test_split(name, root=None, *, download=False, progress=True):
    """The raw test images and labels that :func:`prepare` evaluates on (same rows, same order)."""
    if name not in _SETTINGS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    _, _, X_test, y_test = load_dataset(name, root, download=download, progress=progress)
    num_test = _SETTINGS[name][1]
    return X_test[:num_test], y_test[:num_test]


def prepare(
    name="digits",
    root=None,
    *,
    download=False,
    num_validation=None,
    num_test=None,
    seed=0,
    dtype=np.float64,
    progress=True,
):
    """Load a data set and preprocess it as the course does.

    Parameters
    ----------
    name : {"digits", "mnist", "fashion-mnist", "cifar10"}
    root : str or os.PathLike, optional
        Where the files are (default: the data home, see :func:`data_home`).
    download : bool, default False
    num_validation : int, optional
        Validation rows taken from the training set: 1,000 for CIFAR-10 (the training rows
        49,000-49,999, as the course does), 5,000 for MNIST and Fashion-MNIST and 250 for
        digits (a random draw from ``seed``).
    num_test : int, optional
        Keep the first ``num_test`` test rows (CIFAR-10: 1,000, as the course; others: all).
    seed : int, default 0
        Seeds the validation draw.
    dtype : float64 (default) or float32
    progress : bool, default True

    Returns
    -------
    Split
        ``X_train, y_train, X_val, y_val, X_test, y_test`` (rows flattened, mean image of the
        training rows subtracted; pixels scaled to [0, 1] first except for CIFAR-10, which
        the course keeps at 0-255) and the ``preprocessing`` that made them.

    Examples
    --------
    >>> from mlp_numba.datasets import prepare
    >>> data = prepare("digits", seed=1)  # doctest: +SKIP
    >>> round(float(abs(data.X_train.mean(axis=0)).max()), 12)  # doctest: +SKIP
    0.0
    """
    if name not in _SETTINGS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    default_val, default_test, scale, course_split = _SETTINGS[name]
    raw = load_dataset(name, root, download=download, progress=progress)
    return split_and_preprocess(
        name,
        raw,
        num_validation=default_val if num_validation is None else num_validation,
        num_test=default_test if num_test is None else num_test,
        seed=seed,
        dtype=dtype,
        scale=scale,
        course_split=course_split,
    )
