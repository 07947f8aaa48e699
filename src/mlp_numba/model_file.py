"""Model files: params, architecture and random state in one ``.npz``, read without pickle.

The archive holds the four params under their own names, any extra arrays a caller keeps with
the model (e.g. the CLI's preprocessing) under ``extra/<name>``, and one JSON document: the
format name and version, the library version, the sizes, the activation and its parameters,
the dtype, the state of the net's random Generator (or ``null`` when it draws from NumPy's
global state), the optimizer's state and the caller's own metadata. Files are written
atomically and read with ``allow_pickle=False``, so a file can neither run code nor be left
half-written.
"""

from __future__ import annotations

from ._model_io import FORMAT_VERSION, ModelFileError, SavedModel, model_path, read_record

__all__ = ["FORMAT_VERSION", "ModelFileError", "SavedModel", "load_model", "model_path",
           "save_model"]  # fmt: skip


def load_model(path, cls=None):
    """Read a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike
    cls : class, optional
        The net class to build. Default: the compiled class of the saved net,
        :class:`mlp_numba.MLP` for an ``MLP`` (or a net of several hidden layers), else
        :class:`mlp_numba.TwoLayerNet`. The reference's classes read the same files.

    Returns
    -------
    SavedModel
        ``net`` with bitwise the saved params, plus the saved ``metadata`` and ``arrays``.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        When the file is not a model file, is damaged, or comes from a newer format version.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from mlp_numba import TwoLayerNet
    >>> path = save_model(pathlib.Path(tempfile.mkdtemp()) / "net", TwoLayerNet(4, 3, 2, seed=0))
    >>> load_model(path).net
    TwoLayerNet(input_size=4, hidden_size=3, output_size=2, activation='relu', dtype=float64)
    """
    record = read_record(path)
    if cls is None:
        cls = _compiled_class(record.class_name, record.sizes)
    net = cls._from_record(record, path)
    return SavedModel(net, record.metadata, record.arrays, record.library_version)


def save_model(path, net, *, metadata=None, arrays=None):
    """Write ``net`` to ``path`` (``.npz``) atomically; return the path written.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; ``.npz`` is appended when the name lacks it.
    net : TwoLayerNet or MLP
        A compiled or a reference net.
    metadata : dict, optional
        JSON-serialisable information kept with the model (e.g. the training settings).
    arrays : dict of str to ndarray, optional
        Extra numeric arrays kept with the model (e.g. the mean image used in preprocessing).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from mlp_numba import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> path = save_model(pathlib.Path(tempfile.mkdtemp()) / "net", net)
    >>> path.name
    'net.npz'
    >>> back = load_model(path, TwoLayerNet).net
    >>> bool((back.params["W1"] == net.params["W1"]).all())
    True
    """
    return net.save(path, metadata=metadata, arrays=arrays)


def _compiled_class(name, sizes):
    """The compiled class of a file's net: ``MLP`` when it was saved from one (or from a
    reference ``MLP``) or has several hidden layers, else ``TwoLayerNet``."""
    if name == "MLP" or len(sizes) != 3:
        from .mlp import MLP

        return MLP
    from .net import TwoLayerNet

    return TwoLayerNet
