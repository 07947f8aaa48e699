"""TwoLayerNet's training step in a grid of cells, two checkouts in alternating processes.

Usage::

    python bench/step_cells.py --old ../old/src --new src --pairs 3
    python bench/step_cells.py --new src --pairs 1 --cells 784-100-10    # one shape only
    # the installed wheel's shipped (x86-64-v3) code against code compiled for this CPU:
    MLP_NUMBA_CACHE_DIR=/tmp/native mlp-numba compile --native
    python bench/step_cells.py --old installed --new installed \
        --old-env MLP_NUMBA_CACHE_DIR=/tmp/empty --new-env MLP_NUMBA_CACHE_DIR=/tmp/native

Each process (``--worker``) times, for every cell (shape x dtype x activation x optimizer),
``train`` calls of ``--iters`` steps on 2,000 random rows, batch 200, after an untimed call
that compiles or loads the engine; it reports the median seconds per step over ``--repeat``
calls. The driver runs old and new workers in turn, ``--pairs`` times, each checkout's
``src`` first on ``PYTHONPATH``, and prints each cell's median new/old ratio over the pairs,
their geometric mean and the largest. Only the public API is used.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time

SHAPES = ("784-100-10", "3072-100-10", "784-512-10")
DTYPES = ("float64", "float32")
ACTIVATIONS = ("relu", "tanh", "gelu")
OPTIMIZERS = ("sgd", "adam")


def cells(shapes):
    return list(itertools.product(shapes, DTYPES, ACTIVATIONS, OPTIMIZERS))


def work(args):
    """Time every cell in this process; print {cell: seconds per step} as JSON."""
    import numpy as np

    from mlp_numba import TwoLayerNet

    results = {}
    for shape, dtype, activation, optimizer in cells(args.cells.split(",")):
        D, H, C = (int(n) for n in shape.split("-"))
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2000, D)).astype(dtype)
        y = rng.integers(0, C, 2000)
        net = TwoLayerNet(D, H, C, std=1e-2, activation=activation, dtype=dtype, seed=0)
        kw = dict(
            learning_rate=1e-3, batch_size=200, optimizer=optimizer, iterations_per_epoch=10**9
        )
        net.train(X, y, X[:200], y[:200], num_iters=5, **kw)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            net.train(X, y, X[:200], y[:200], num_iters=args.iters, **kw)
            times.append((time.perf_counter() - started) / args.iters)
        results["/".join((shape, dtype, activation, optimizer))] = statistics.median(times)
    print(json.dumps(results))


def run_worker(src, args, assignments=()):
    """One worker process on ``src`` (``installed``: the installed package), with the
    environment variables ``assignments`` (``KEY=VALUE`` each)."""
    env = dict(os.environ)
    if src != "installed":
        env["PYTHONPATH"] = os.path.abspath(src)
    env.update(assignment.split("=", 1) for assignment in assignments)
    command = [sys.executable, __file__, "--worker", "--cells", args.cells,
               "--iters", str(args.iters), "--repeat", str(args.repeat)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def drive(args):
    runs = {"old": [], "new": []}
    for _ in range(args.pairs):
        for name in ("old", "new"):
            assignments = getattr(args, f"{name}_env") or ()
            runs[name].append(run_worker(getattr(args, name), args, assignments))
    ratios = {}
    print("| cell | old ms | new ms | new/old |\n| --- | --- | --- | --- |")
    for cell in runs["new"][0]:
        old = statistics.median(r[cell] for r in runs["old"])
        new = statistics.median(r[cell] for r in runs["new"])
        pairs = [n[cell] / o[cell] for n, o in zip(runs["new"], runs["old"], strict=True)]
        ratios[cell] = statistics.median(pairs)
        print(f"| {cell} | {old * 1e3:.3f} | {new * 1e3:.3f} | {ratios[cell]:.3f} |")
    geometric = math.exp(statistics.fmean(math.log(r) for r in ratios.values()))
    worst = max(ratios, key=ratios.get)
    print(f"\ngeometric mean of the cells' median pair ratios: {geometric:.3f}")
    print(f"largest: {ratios[worst]:.3f} ({worst}); pairs: {args.pairs}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="the old checkout's src folder, or 'installed'")
    parser.add_argument(
        "--new", default="src", help="the new checkout's src folder, or 'installed'"
    )
    for name in ("old", "new"):
        parser.add_argument(
            f"--{name}-env", action="append", metavar="KEY=VALUE",
            help=f"an environment variable of the {name} processes (repeatable)",
        )  # fmt: skip
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cells", default=",".join(SHAPES), help="shapes, comma-separated")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work(args)
    elif args.old is None:
        print(json.dumps(run_worker(args.new, args), indent=1))
    else:
        drive(args)


if __name__ == "__main__":
    main()
