"""
Export to ONNX and serve with onnxruntime
=========================================

Train here, serve anywhere: a net trained with mlp_numba becomes an ONNX model that onnxruntime
runs without Numba (a web service, C++, Java, a phone, a browser). This example trains a net on
scikit-learn's digits, exports it with :func:`mlp_numba.onnx.to_onnx`, serves it with
onnxruntime, checks that both give the same answers, and compares their prediction speed on a
batch of 1 row and of 10,000 rows. It needs ``pip install 'mlp-numba[onnx]'``.
"""

import tempfile
import timeit
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mlp_numba import MLP
from mlp_numba.datasets import prepare
from mlp_numba.onnx import to_onnx

# %%
# Train a two-hidden-layer net on the digits, in float32 (what most serving stacks use; the
# data set's rows are float64, and onnxruntime takes the model's dtype only).
data = prepare("digits", seed=0)
X_test = data.X_test.astype(np.float32)
net = MLP(data.num_features, (128, 64), data.num_classes, activation="gelu", dtype=np.float32,
          seed=0)  # fmt: skip
net.train(data.X_train, data.y_train, data.X_val, data.y_val, learning_rate=1e-3,
          num_iters=1500, batch_size=64, optimizer="adam")  # fmt: skip
print(f"test accuracy: {(net.predict(data.X_test) == data.y_test).mean():.4f}")

# %%
# Export: the model takes rows ``X`` (N, 64) and answers ``label`` and ``probabilities``.
path = Path(tempfile.mkdtemp()) / "digits.onnx"
model = to_onnx(net, path)
print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, opset {model.opset_import[0].version}")
print({p.key: p.value for p in model.metadata_props})

# %%
# Serve it with onnxruntime and compare the answers with the net's own.
session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
labels, probabilities = session.run(None, {"X": X_test})
gap = np.abs(probabilities - net.predict_proba(X_test)).max()
same = (labels == net.predict(X_test)).mean()
print(f"largest difference of a probability: {gap:.2e}; same label for {same:.1%} of the rows")

# %%
# Prediction speed: one row (a request at a time) and 10,000 rows (a batch), median of
# repeated calls. The net's ``predict`` runs the compiled engine on every core; onnxruntime
# runs its own kernels.
rng = np.random.default_rng(0)
batch = X_test[rng.integers(0, len(X_test), 10_000)]
one = batch[:1]
for name, X in (("1 row", one), ("10,000 rows", batch)):
    calls = 200 if len(X) == 1 else 20
    ours = np.median(timeit.repeat(lambda X=X: net.predict(X), number=1, repeat=calls))
    theirs = np.median(
        timeit.repeat(lambda X=X: session.run(["label"], {"X": X}), number=1, repeat=calls)
    )
    print(f"{name}: mlp_numba predict {ours * 1e3:.3f} ms, onnxruntime {theirs * 1e3:.3f} ms")
