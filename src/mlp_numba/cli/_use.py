"""``mlp-numba evaluate``, ``predict`` and ``export``: use a model written by ``train``."""

from __future__ import annotations

import sys

import numpy as np

from .._atomic import atomic_write
from ..datasets import Preprocessing, load_test_split
from ..model_file import load_model
from ._errors import UserError


def _load(path):
    saved = load_model(path)
    prep = None
    if "preprocessing_mean" in saved.arrays:
        prep = Preprocessing.from_arrays(saved.arrays)
        if prep.mean.size != saved.net.input_size:
            raise UserError(f"{path}: its preprocessing does not fit its net (damaged file?)")
    return saved.net, prep


def run_evaluate(args):
    net, prep = _load(args.model)
    images, labels = load_test_split(args.dataset, args.data_dir, download=args.download)
    if prep is None:
        raise UserError(f"{args.model} has no preprocessing saved: evaluate it from Python")
    try:
        X = prep(images)
    except ValueError as exc:
        raise UserError(f"{args.model} does not fit the {args.dataset} data set: {exc}") from exc
    if labels.max() >= net.output_size:
        raise UserError(
            f"{args.model} has {net.output_size} classes but {args.dataset} has labels up to "
            f"{labels.max()}"
        )
    loss, _ = net.loss(X, labels)
    accuracy = float((net.predict(X) == labels).mean())
    print(f"{args.dataset}: {len(labels)} test rows, loss {float(loss):.4f}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


def run_predict(args):
    net, prep = _load(args.model)
    with open(args.input, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UserError(f"{args.input}: not a .npy file (write one with numpy.save)")
    try:
        inputs = np.load(args.input, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{args.input}: not a numeric .npy file ({exc})") from exc
    if not isinstance(inputs, np.ndarray):
        raise UserError(f"{args.input}: expected one array (.npy), got an archive")
    if inputs.dtype.kind not in "biuf":
        raise UserError(f"{args.input}: expected numbers, got dtype {inputs.dtype}")
    single = inputs.ndim == (len(prep.image_shape) if prep else 1)
    if single:
        inputs = inputs[None]
    try:
        X = prep(inputs) if prep else inputs
        out = net.predict_proba(X) if args.proba else net.predict(X)
    except ValueError as exc:
        raise UserError(f"{args.input}: {exc}") from exc
    if args.output:
        with atomic_write(args.output) as f:
            np.save(f, out)
        print(f"wrote {len(out)} {'probabilities' if args.proba else 'predictions'} to "
              f"{args.output}")  # fmt: skip
    elif args.proba:
        np.savetxt(sys.stdout, out, fmt="%.6f")
    else:
        print("\n".join(str(int(c)) for c in out))
    return 0


def run_export(args):
    from ..onnx import export_model_file

    model = export_model_file(args.model, args.output, opset=args.opset)
    (source,) = model.graph.input
    shape = [d.dim_value or "N" for d in source.type.tensor_type.shape.dim]
    print(f"wrote {args.output}: input {source.name} {tuple(shape)}, outputs label and "
          f"probabilities, opset {model.opset_import[0].version}")  # fmt: skip
    return 0
