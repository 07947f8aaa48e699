"""Model files: params, architecture and random state in one ``.npz``, read without pickle.

The format itself, as plain records (:class:`ModelRecord`: arrays and a small metadata
mapping) that know no net class: each net class builds itself from one and writes one
(``_base.NetBase``); :mod:`mlp_numba.model_file` is the public face.

The archive holds the four params under their own names, any extra arrays a caller keeps with the
model (e.g. the CLI's preprocessing) under ``extra/<name>``, and one JSON document under
``__mlp_numba__``: the format name and version, the library version, the sizes, the activation
and its parameters, the dtype, the state of the net's random Generator (or ``null`` when it
draws from NumPy's global state) and the caller's own metadata. Files are written atomically
and read with ``allow_pickle=False``, so a file can neither run code nor be left half-written.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _validation as v
from ._atomic import atomic_write
from ._optimizer_spec import OPTIMIZERS, resolve_optimizer
from ._version import __version__

FORMAT = "mlp-numba-model"
#: The newest format version this library writes and reads.
FORMAT_VERSION = 1
_META_KEY = "__mlp_numba__"
_EXTRA = "extra/"
_OPTIMIZER = "optimizer/"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class ModelFileError(ValueError):
    """A model file is damaged, is not a model file, or needs a newer mlp_numba."""


@dataclass
class ModelRecord:
    """What a model file holds, as plain values and arrays."""

    #: The saved net's class name (``TwoLayerNet``, ``MLP``).
    class_name: str
    #: The layer widths (inputs, hidden..., classes).
    sizes: tuple
    activation: str
    activation_params: dict
    dtype: np.dtype
    #: The params by name, C-ordered.
    params: dict
    #: The state of the net's random Generator (``rng_state``), or None.
    random_state: dict | None
    #: ``{"name", "params", "step", "buffers"}`` (buffers: dicts of arrays like the params),
    #: or None.
    optimizer: dict | None
    #: The caller's JSON metadata and extra numeric arrays.
    metadata: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    library_version: str = __version__


@dataclass
class SavedModel:
    """What :func:`load_model` returns: the net and what was saved beside it."""

    net: object
    metadata: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    library_version: str = ""


def model_path(path):
    """``path`` as a Path ending in ``.npz`` (appended when missing, as ``np.savez`` does)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write_record(path, record):
    """Write ``record`` to ``path`` (``.npz`` appended when missing) atomically; return the
    path written. TypeError when its metadata is not JSON or its arrays not numeric."""
    if not isinstance(record.metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(record.metadata).__name__}")
    if not isinstance(record.arrays, dict):
        raise TypeError(f"arrays must be a dict, got {type(record.arrays).__name__}")
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": record.library_version,
        "class": record.class_name,
        "sizes": list(record.sizes),
        "activation": record.activation,
        "activation_params": dict(record.activation_params),
        "dtype": np.dtype(record.dtype).name,
        "random_state": record.random_state,
        "optimizer": _optimizer_header(record.optimizer),
        "metadata": record.metadata,
    }
    try:
        document = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable with finite numbers: {exc}") from exc
    contents = {_META_KEY: np.array(document), **record.params}
    for i, buffers in enumerate(record.optimizer["buffers"] if record.optimizer else ()):
        contents.update({f"{_OPTIMIZER}{i}/{k}": b for k, b in buffers.items()})
    contents.update(_extra_arrays(record.arrays))
    path = model_path(path)
    with atomic_write(path) as f:
        np.savez(f, **contents)
    return path


def _extra_arrays(arrays):
    contents = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"arrays keys must be non-empty strings, got {name!r}")
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"arrays[{name!r}] must be numeric, got dtype {value.dtype}")
        contents[_EXTRA + name] = value
    return contents


def read_record(path):
    """The :class:`ModelRecord` of the model file ``path``; ModelFileError when it is not one,
    is damaged or needs a newer mlp_numba (see :func:`mlp_numba.model_file.load_model`)."""
    path = Path(path)
    with open(path, "rb") as f:  # raises FileNotFoundError, IsADirectoryError, ...
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ModelFileError(f"{path} is not an mlp-numba model file (not an .npz archive)")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path} is not an mlp-numba model file (not an .npz archive)")
        with archive:
            contents = {name: archive[name] for name in archive.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError, ModelFileError):
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path} is damaged or not a model file: {exc}") from exc
    with damaged_if_invalid(path):
        return _record(path, contents)


@contextlib.contextmanager
def damaged_if_invalid(path):
    """Within: a KeyError, TypeError or ValueError (a value the file should not hold) is a
    ModelFileError saying that the file ``path`` is damaged."""
    try:
        yield
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} is damaged: {exc}") from exc


def _record(path, contents):
    header = _read_header(path, contents)
    sizes = tuple(header["sizes"])
    shapes = v.param_shapes(sizes)
    params = {}
    for key, shape in shapes.items():
        if key not in contents:
            raise ModelFileError(f"{path} is damaged: it has no {key!r} array")
        params[key] = np.array(contents[key], order="C", copy=True)
        if params[key].shape != shape:
            raise ModelFileError(f"{path} is damaged: params[{key!r}] must have shape {shape}")
    if not all(np.isfinite(p).all() for p in params.values()):
        raise ModelFileError(f"{path} is damaged: its params hold NaN or inf")
    dtype = np.dtype(header["dtype"])
    rng_from_state(header["random_state"])  # checked here, rebuilt by the net
    metadata = header["metadata"]
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path} is damaged: its metadata is not a JSON object")
    return ModelRecord(
        class_name=str(header.get("class", "")), sizes=sizes, activation=header["activation"],
        activation_params=header["activation_params"], dtype=dtype, params=params,
        random_state=header["random_state"],
        optimizer=_optimizer_state(path, header.get("optimizer"), contents, shapes, dtype),
        metadata=metadata,
        arrays={k[len(_EXTRA) :]: a for k, a in contents.items() if k.startswith(_EXTRA)},
        library_version=str(header["library_version"]),
    )  # fmt: skip


def _read_header(path, contents):
    if _META_KEY not in contents:
        raise ModelFileError(f"{path} is not an mlp-numba model file (no {_META_KEY} record)")
    raw = contents[_META_KEY]
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFileError(f"{path} is damaged: its {_META_KEY} record is not a string")
    try:
        header = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path} is damaged: its metadata is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlp-numba model file")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path} is damaged: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in model format version {version} by mlp_numba "
            f"{header.get('library_version', '?')}; this mlp_numba {__version__} reads up to "
            f"version {FORMAT_VERSION}: upgrade mlp-numba to load it"
        )
    missing = [
        k
        for k in ("sizes", "activation", "activation_params", "dtype", "random_state", "metadata")
        if k not in header
    ]
    if missing:
        raise ModelFileError(f"{path} is damaged: its metadata lacks {missing}")
    sizes = header["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 3 or not all(type(n) is int for n in sizes):
        raise ModelFileError(f"{path} is damaged: sizes must be a list of 3 or more integers")
    return header


def rng_state(rng):
    if rng is None:
        return None
    state = rng.bit_generator.state
    return json.loads(json.dumps(state, default=lambda a: np.asarray(a).tolist()))


def rng_from_state(state):
    if state is None:
        return None
    if not isinstance(state, dict) or state.get("bit_generator") not in _BIT_GENERATORS:
        raise ModelFileError(f"unknown random state {state!r:.80}")
    bit_generator = getattr(np.random, state["bit_generator"])()
    if state["bit_generator"] == "MT19937":
        state = {**state, "state": {**state["state"]}}
        state["state"]["key"] = np.asarray(state["state"]["key"], dtype=np.uint32)
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _optimizer_header(state):
    if state is None:
        return None
    return {"name": state["name"], "params": state["params"], "step": int(state["step"]),
            "buffers": len(state["buffers"])}  # fmt: skip


def _optimizer_state(path, header, contents, shapes, dtype):
    """The saved optimizer state, checked against the net, or None when none was saved."""
    if header is None:
        return None
    try:
        name, values = resolve_optimizer(header["name"], header["params"])
        step, count = header["step"], header["buffers"]
        if not isinstance(step, int) or step < 0 or count != OPTIMIZERS[name][2]:
            raise ValueError(f"bad step {step!r} or buffer count {count!r}")
        buffers = [
            {k: np.array(contents[f"{_OPTIMIZER}{i}/{k}"], order="C") for k in shapes}
            for i in range(count)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} is damaged: bad optimizer state ({exc})") from exc
    for buffer in buffers:
        for k, b in buffer.items():
            if b.shape != shapes[k] or b.dtype != dtype:
                raise ModelFileError(f"{path} is damaged: optimizer buffer {k!r} does not fit")
    return {"name": name, "params": values, "step": step, "buffers": buffers}
