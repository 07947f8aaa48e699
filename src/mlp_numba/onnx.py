"""Export to ONNX: serve a trained net anywhere onnxruntime runs, without Numba.

``pip install 'mlp-numba[onnx]'`` (onnx, onnxruntime, skl2onnx). :func:`to_onnx` exports a
``TwoLayerNet``, an ``MLP`` of any depth (compiled or reference) or a fitted
``MLPNumbaClassifier``; importing this module also registers a skl2onnx converter, so that
``skl2onnx.to_onnx`` converts a scikit-learn pipeline holding the estimator.

The graph takes a float input ``X`` of shape (N, D) in the net's dtype and has two outputs,
as skl2onnx's classifiers: ``label`` (N,), the most probable class (the estimator's
``classes_``, a net's class index), and ``probabilities`` (N, C), the softmax of the scores.
Dropout is training only and not part of it.
"""

from __future__ import annotations

import json
import os

import numpy as np

try:
    import onnx
    from onnx import TensorProto, checker, helper
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mlp_numba.onnx needs onnx: pip install 'mlp-numba[onnx]' (onnx, onnxruntime, skl2onnx)"
    ) from exc

from ._atomic import atomic_write
from ._onnx_graph import ELEMENT_TYPES, Emitter, add_net
from ._version import __version__

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_model_file", "save", "to_onnx"]

#: The opset of the graphs by default: the newest that onnxruntime 1.20, the oldest the
#: ``onnx`` extra allows, runs.
DEFAULT_OPSET = 21
#: The oldest opset the graph can use (Softmax over one axis, as opset 13 defines it).
MIN_OPSET = 13
#: The IR version onnxruntime 1.20 reads (ONNX 1.16's, the first with opset 21).
_IR_VERSION = 10


class _GraphEmitter(Emitter):
    """Collects a standalone graph."""

    def __init__(self, dtype):
        super().__init__(dtype)
        self.nodes, self.initializers, self._count = [], [], 0

    def _name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array, hint="c"):
        name = self._name(hint)
        self.initializers.append(onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def strings(self, values, hint="classes"):
        name = self._name(hint)
        tensor = helper.make_tensor(
            name, TensorProto.STRING, [len(values)], [v.encode() for v in values]
        )
        self.initializers.append(tensor)
        return name

    def node(self, op_type, inputs, hint=None, outputs=None, **attributes):
        outputs = outputs or [self._name(hint or op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attributes))
        return outputs[0]


def _unpack(model):
    """(net, classes, class name) of a net or a fitted estimator; a clear error otherwise."""
    from .estimator import MLPNumbaClassifier

    if isinstance(model, MLPNumbaClassifier):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "iubOUS":
            raise ValueError(
                f"model.classes_ must hold integers or strings to be exported, got {classes.dtype}"
            )
        return model.net_, classes, type(model).__name__
    needed = ("params", "sizes", "activation", "activation_params", "dtype")
    if not all(hasattr(model, name) for name in needed):
        raise TypeError(
            "model must be a TwoLayerNet, an MLP or a fitted MLPNumbaClassifier, got "
            f"{type(model).__name__}"
        )
    return model, np.arange(model.sizes[-1]), type(model).__name__


def _check_opset(opset):
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an integer, got {type(opset).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be from {MIN_OPSET} to {newest} (this onnx), got {opset}")
    return int(opset)


def to_onnx(model, path=None, *, opset=None):
    """The ONNX model of a net or of a fitted estimator.

    Parameters
    ----------
    model : TwoLayerNet, MLP or MLPNumbaClassifier
        A net of any depth (compiled or ``mlp_numba.reference``), or a fitted estimator.
    path : str or path-like, optional
        Where to write the model too (atomically: the old file or the whole new one).
    opset : int, optional
        The ONNX opset, from :data:`MIN_OPSET` to the newest the installed onnx knows;
        default :data:`DEFAULT_OPSET`.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (N, D) of the net's dtype; outputs ``label`` (N,) and ``probabilities``
        (N, C). Its metadata holds the producer, the library's version, the class, sizes,
        activation and its parameters, the dtype and the classes.

    Examples
    --------
    >>> import numpy as np
    >>> from mlp_numba import TwoLayerNet
    >>> from mlp_numba.onnx import to_onnx
    >>> model = to_onnx(TwoLayerNet(4, 8, 3, seed=0))
    >>> [o.name for o in model.graph.output]
    ['label', 'probabilities']
    """
    net, classes, kind = _unpack(model)
    onnx_model = _build(net, classes, kind, _check_opset(opset))
    if path is not None:
        save(onnx_model, path)
    return onnx_model


def _build(net, classes, kind, opset, preprocessing=None, metadata=None):
    """The checked model of ``net``; with ``preprocessing`` (``datasets.Preprocessing``) its
    input is the raw images, flattened, scaled and centred in the graph."""
    dtype = np.dtype(net.dtype)
    element = ELEMENT_TYPES[dtype]
    emitter = _GraphEmitter(dtype)
    if preprocessing is None:
        name, shape, X = "X", [None, net.sizes[0]], "X"
    else:
        name, shape = "images", [None, *preprocessing.image_shape]
        X = emitter.node("Flatten", [name], "rows", axis=1)
        if preprocessing.scale != 1:
            X = emitter.node("Mul", [X, emitter.scalar(preprocessing.scale)], "scaled")
        mean = emitter.const(np.asarray(preprocessing.mean, dtype), "mean")
        X = emitter.node("Sub", [X, mean], "centred")
    add_net(emitter, X, net, classes, "label", "probabilities")
    label_type = TensorProto.STRING if classes.dtype.kind in "OUS" else TensorProto.INT64
    graph = helper.make_graph(
        emitter.nodes, "mlp_numba", [helper.make_tensor_value_info(name, element, shape)],
        [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", element, [None, len(classes)]),
        ],
        initializer=emitter.initializers,
    )  # fmt: skip
    onnx_model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="mlp-numba",
        producer_version=__version__, doc_string=f"{kind} exported by mlp_numba {__version__}",
    )  # fmt: skip
    onnx_model.ir_version = _IR_VERSION
    described = {
        "class": kind, "sizes": json.dumps(list(net.sizes)), "activation": net.activation,
        "activation_params": json.dumps(net.activation_params), "dtype": dtype.name,
        "classes": json.dumps([c.item() if hasattr(c, "item") else c for c in classes]),
    }  # fmt: skip
    for key, value in (metadata or {}).items():
        described[str(key)] = value if isinstance(value, str) else json.dumps(value, default=str)
    helper.set_model_props(onnx_model, described)
    checker.check_model(onnx_model)
    return onnx_model


def export_model_file(model_path, path, *, opset=None):
    """Export a model file written by ``mlp-numba train`` or ``search`` (or ``save_model``).

    Parameters
    ----------
    model_path : str or path-like
        The model file (``.npz``).
    path : str or path-like
        The ONNX file to write (atomically).
    opset : int, optional
        As :func:`to_onnx`'s.

    Returns
    -------
    onnx.ModelProto
        When the file holds its preprocessing (the data sets' scaling, mean image and image
        shape), its input is ``images``, the raw inputs of shape ``(N, *image_shape)`` as
        floats, and the preprocessing runs in the graph; otherwise ``X``, the rows the net
        takes. The file's metadata is in the model's, under ``model_file.<key>``.
    """
    from .datasets import Preprocessing
    from .model_file import load_model

    opset = _check_opset(opset)
    saved = load_model(model_path)
    net = saved.net
    prep = None
    if "preprocessing_mean" in saved.arrays:
        prep = Preprocessing.from_arrays(saved.arrays)
        if prep.mean.size != net.sizes[0]:
            raise ValueError(f"{model_path}: its preprocessing does not fit its net")
    metadata = {f"model_file.{k}": v for k, v in (saved.metadata or {}).items()}
    kind = type(net).__name__
    onnx_model = _build(net, np.arange(net.sizes[-1]), kind, opset, prep, metadata)
    save(onnx_model, path)
    return onnx_model


def save(onnx_model, path):
    """Write ``onnx_model`` to ``path`` atomically."""
    with atomic_write(os.fspath(path)) as f:
        f.write(onnx_model.SerializeToString())


def _register_skl2onnx():
    """The converter skl2onnx uses for ``MLPNumbaClassifier`` (when skl2onnx is installed)."""
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.common.data_types import guess_numpy_type
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    except ImportError:
        return False
    from .estimator import MLPNumbaClassifier

    def convert(scope, operator, container):
        estimator = operator.raw_operator
        net, classes, _ = _unpack(estimator)
        dtype = np.dtype(net.dtype)
        emitter = _ContainerEmitter(dtype, scope, container)
        given = np.dtype(guess_numpy_type(operator.inputs[0].type))
        X = operator.inputs[0].full_name
        if given != dtype:
            X = emitter.node("Cast", [X], "as_net_dtype", to=ELEMENT_TYPES[dtype])
        label, proba = (o.full_name for o in operator.outputs)
        wanted = np.dtype(guess_numpy_type(operator.outputs[1].type))
        inner = proba if wanted == dtype else scope.get_unique_variable_name("proba")
        add_net(emitter, X, net, classes, label, inner)
        if inner != proba:
            emitter.node("Cast", [inner], outputs=[proba], to=ELEMENT_TYPES[wanted])

    update_registered_converter(
        MLPNumbaClassifier, "MlpNumbaMLPNumbaClassifier",
        calculate_linear_classifier_output_shapes, convert,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )  # fmt: skip
    return True


class _ContainerEmitter(Emitter):
    """Adds to skl2onnx's container, with names unique in its scope."""

    def __init__(self, dtype, scope, container):
        super().__init__(dtype)
        self.scope, self.container = scope, container

    def const(self, array, hint="c"):
        array = np.asarray(array)
        name = self.scope.get_unique_variable_name(hint)
        element = TensorProto.INT64 if array.dtype.kind in "iu" else ELEMENT_TYPES[array.dtype]
        self.container.add_initializer(name, element, list(array.shape), array.ravel().tolist())
        return name

    def strings(self, values, hint="classes"):
        name = self.scope.get_unique_variable_name(hint)
        encoded = [v.encode() for v in values]
        self.container.add_initializer(name, TensorProto.STRING, [len(values)], encoded)
        return name

    def node(self, op_type, inputs, hint=None, outputs=None, **attributes):
        outputs = outputs or [self.scope.get_unique_variable_name(hint or op_type.lower())]
        name = self.scope.get_unique_operator_name(op_type)
        self.container.add_node(op_type, inputs, outputs, name=name, **attributes)
        return outputs[0]


SKL2ONNX_REGISTERED = _register_skl2onnx()
