"""Time to the first result: each case a fresh process, timed whole, with its own cache folder.

Usage::

    python bench/startup.py                          # the cases below, 3 runs each
    python bench/startup.py --src ../old/src --runs 5 --json old.json
    python bench/startup.py --cases cli,workflow     # the CLI and the activation workflow

Every case runs ``python -c CODE`` in a new process whose ``NUMBA_CACHE_DIR`` is a new empty
folder (``cold``) or a folder that an untimed run of the same code filled first (``warm``), and
reports the whole process's wall time (interpreter start, imports, compiling, the work), the
median over ``--runs``. The compiled code a wheel ships is ignored (``MLP_NUMBA_NO_SHIPPED=1``,
so ``cold`` compiles from nothing) unless ``--shipped`` is given. Only the public API is used,
so ``--src`` can point at any checkout's ``src`` folder (it goes first on ``PYTHONPATH``):
timing two checkouts in turn on one machine compares them.

Cases:

- ``first-f64`` / ``first-f32``: import, build a 784-100-10 net, one ``train`` call of 50
  iterations on 2,000 random rows (with the accuracies it scores), empty cache;
- ``next-activation``: the same with ``tanh``, after ``first-f64`` filled the cache (relu);
- ``inputs-after-train``: after ``train``, ``predict``, ``predict_proba`` and ``loss`` on
  read-only, Fortran-ordered, strided, list, integer and uint8 inputs, cache filled by
  ``first-f64``: the seconds beyond ``first-f64`` warm are compiling;
- ``warm``: everything cached, import + build + one ``train`` step;
- ``cli``: ``mlp-numba train`` (README command 1's second half), empty cache;
- ``workflow``: the course reports' activation comparison (relu, leaky_relu, swish, selu on
  20,000 x 3,072 rows, 1,000 iterations each, hidden 100, the course's hyperparameters), empty
  cache then warm, against ``mlp_numba.reference`` doing the same (minutes; not in the default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = """
import numpy as np
import mlp_numba
rng = np.random.default_rng(0)
X, y = rng.standard_normal((2000, 784)), rng.integers(0, 10, 2000)
net = mlp_numba.TwoLayerNet(784, 100, 10, activation="{activation}", dtype="{dtype}", seed=0)
net.train(X, y, X[:500], y[:500], num_iters={iters})
"""

INPUTS = (
    FIRST
    + """
R = X[:300].copy(); R.setflags(write=False)
for Z in (R, np.asfortranarray(X[:300]), X[:600:2], X[:20].tolist(),
          (X[:300] * 10).astype(np.int64), np.clip(X[:300] * 40 + 128, 0, 255).astype(np.uint8)):
    net.predict(Z); net.predict_proba(Z); net.loss(Z); net.loss(Z, y[:len(Z)], reg=0.1)
"""
)

WORKFLOW = """
import numpy as np
from mlp_numba import TwoLayerNet
from mlp_numba import reference
rng = np.random.default_rng(0)
X = rng.standard_normal((20_000, 3072))
y = rng.integers(0, 10, 20_000)
Xv, yv = X[:1000], y[:1000]
cls = reference.TwoLayerNet if {reference} else TwoLayerNet
for activation in ("relu", "leaky_relu", "swish", "selu"):
    np.random.seed(0)
    net = cls(3072, 100, 10, activation=activation)
    net.train(X, y, Xv, yv, learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25,
              num_iters=1000, batch_size=200)
"""

CLI = [sys.executable, "-m", "mlp_numba", "train", "--output", "{tmp}/run"]

# name -> (what runs, cache: "cold" (empty) or the code that fills it first, untimed)
CASES = {
    "first-f64": (FIRST.format(activation="relu", dtype="float64", iters=50), "cold"),
    "first-f32": (FIRST.format(activation="relu", dtype="float32", iters=50), "cold"),
    "next-activation": (
        FIRST.format(activation="tanh", dtype="float64", iters=50),
        FIRST.format(activation="relu", dtype="float64", iters=50),
    ),
    "inputs-after-train": (
        INPUTS.format(activation="relu", dtype="float64", iters=50),
        FIRST.format(activation="relu", dtype="float64", iters=50),
    ),
    "warm": (
        FIRST.format(activation="relu", dtype="float64", iters=1),
        FIRST.format(activation="relu", dtype="float64", iters=1),
    ),
    "cli": (CLI, "cold"),
    "workflow": (WORKFLOW.format(reference=False), "cold"),
    "workflow-warm": (
        WORKFLOW.format(reference=False),
        FIRST.format(activation="relu", dtype="float64", iters=1).replace("784", "3072"),
    ),
    "workflow-reference": (WORKFLOW.format(reference=True), "cold"),
}
DEFAULT = ("first-f64", "first-f32", "next-activation", "inputs-after-train", "warm", "cli")


def run_process(what, env, tmp):
    command = (
        [part.format(tmp=tmp) for part in what]
        if isinstance(what, list)
        else [sys.executable, "-c", what]
    )
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def measure_case(name, src, runs, shipped=False):
    what, cache = CASES[name]
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
            env.pop("MLP_NUMBA_CACHE_DIR", None)
            env.pop("MLP_NUMBA_NO_SHIPPED", None)
            if not shipped:
                env["MLP_NUMBA_NO_SHIPPED"] = "1"
            if src is not None:
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(Path(src).resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]
                )
            if cache != "cold":
                run_process(cache, env, tmp)
            seconds.append(run_process(what, env, tmp))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(DEFAULT), help=f"from {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per case")
    parser.add_argument("--src", help="a checkout's src folder to time instead of the installed")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--shipped", action="store_true", help="let the installed wheel's compiled code serve"
    )
    args = parser.parse_args(argv)
    names = args.cases.split(",")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    results = {}
    print("| case | median s | runs |")
    print("| --- | --- | --- |")
    for name in names:
        try:
            seconds = measure_case(name, args.src, args.runs, args.shipped)
        except RuntimeError as exc:  # an old checkout may fail a case: say so, go on
            results[name] = None
            last = str(exc).strip().splitlines()[-1]
            print(f"| {name} | failed | {last[:120]} |", flush=True)
            continue
        results[name] = seconds
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"| {name} | {statistics.median(seconds):.2f} | {runs} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"src": args.src, "seconds": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
