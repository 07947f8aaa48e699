"""MNIST and Fashion-MNIST: the IDX file format, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. Every way a file can disagree
with its header is reported as a ValueError that names the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ._download import Resource, data_home, fetch

_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_PARTS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# MNIST: MD5s of the decompressed files (mirrors recompress the gzip streams; the content is
# the same). Fashion-MNIST: MD5s of the .gz files its authors publish.
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
RESOURCES = {
    "mnist": {
        "train_images": ("6bbc9ace898e44ae57da46a324031adb", "gunzipped"),
        "train_labels": ("a25bea736e30d166cdddb491f175f624", "gunzipped"),
        "test_images": ("2646ac647ad5339dbf082846283269ea", "gunzipped"),
        "test_labels": ("27ae3e4e09519cfbb04c329615203637", "gunzipped"),
    },
    "fashion-mnist": {
        "train_images": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "file"),
        "train_labels": ("25c81989df183df01b3e8a0aad5dffbe", "file"),
        "test_images": ("bef4ecab320f06d8554ea6380940ec79", "file"),
        "test_labels": ("bb300cfdad3c16e7a12a480ee83cd310", "file"),
    },
}
MIRRORS = {"mnist": _MNIST_MIRRORS, "fashion-mnist": _FASHION_MIRRORS}


def read_idx(path, ndim=None):
    """Read one IDX file (``.gz`` or raw, told apart by content) into a native-endian array.

    Parameters
    ----------
    path : str or os.PathLike
    ndim : int, optional
        The number of dimensions the file must have.

    Raises
    ------
    ValueError
        Naming the file: bad magic number, wrong number of dimensions, a damaged gzip stream,
        or a data size that disagrees with the header (truncated or with trailing bytes).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes, no complete header)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(f"{path}: bad magic number 0x{raw[:4].hex()}; not an IDX file")
    dims_count = raw[3]
    if ndim is not None and dims_count != ndim:
        raise ValueError(
            f"{path}: expected a {ndim}-dimensional IDX file, the header says {dims_count}"
        )
    header = 4 + 4 * dims_count
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    shape = struct.unpack(f">{dims_count}I", raw[4:header])
    dtype = _TYPES[raw[2]]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise ValueError(
            f"{path}: {what}: the header declares shape {shape} ({expected} bytes of data) "
            f"but the file holds {actual} bytes of data"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: damaged gzip stream ({exc})") from exc


def _find(root, stem):
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_mnist(root=None, *, download=False, kind="mnist", progress=True):
    """Read MNIST (or Fashion-MNIST) from its four IDX files.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The folder holding ``train-images-idx3-ubyte[.gz]`` and the three other files.
        Default: ``<data home>/<kind>`` (see :func:`mlp_numba.datasets.data_home`).
    download : bool, default False
        Fetch missing files from a mirror into ``root``, verified by MD5.
    kind : {"mnist", "fashion-mnist"}
    progress : bool, default True
        Show a progress bar while downloading.

    Returns
    -------
    X_train : ndarray of uint8, shape (60000, 28, 28)
    y_train : ndarray of int64, shape (60000,)
    X_test : ndarray of uint8, shape (10000, 28, 28)
    y_test : ndarray of int64, shape (10000,)

    Examples
    --------
    >>> from mlp_numba.datasets import load_mnist
    >>> X_train, y_train, X_test, y_test = load_mnist("../shared/data/mnist")  # doctest: +SKIP
    >>> X_train.shape, X_train.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    if kind not in RESOURCES:
        raise ValueError(f"kind must be one of {sorted(RESOURCES)}, got {kind!r}")
    root = data_home() / kind if root is None else Path(root)
    paths = {}
    for part, stem in _PARTS.items():
        path = _find(root, stem)
        if path is None and download:
            md5, md5_of = RESOURCES[kind][part]
            urls = tuple(m + stem + ".gz" for m in MIRRORS[kind])
            path = fetch(Resource(stem + ".gz", urls, md5, md5_of), root, progress=progress)
        if path is None:
            raise FileNotFoundError(
                f"{kind}: no {stem}[.gz] in {root}; pass the folder that holds the IDX files, "
                "or download=True (--download) to fetch them"
            )
        paths[part] = path
    out = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], ndim=3)
        labels = read_idx(paths[f"{split}_labels"], ndim=1)
        _check_pair(images, labels, paths[f"{split}_images"], paths[f"{split}_labels"])
        out += [images, labels.astype(np.int64)]
    return tuple(out)


def _check_pair(images, labels, images_path, labels_path):
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(
            f"{images_path} / {labels_path}: MNIST images and labels must be unsigned bytes"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0-9, found {labels.max()}")
