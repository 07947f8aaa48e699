"""Side-by-side training-step times: mlp_numba against its GEMM floor and its peers.

Usage::

    python bench/compare.py                      # all shapes, markdown table on stdout
    python bench/compare.py --shapes mnist --json results.json
    python bench/compare.py --skip-main --optimizers adam --activations tanh,gelu

For each shape (B=200, C=10) and dtype it times, in this one process and in turn (rounds that
take every candidate once, see ``interleaved_medians``), the median of:
the two big products of a step with NumPy (X@W1 and X^T@dZ: the floor; for the deeper shapes,
every layer's forward product and its backward products), a step of
``mlp_numba.TwoLayerNet.train`` (``mlp_numba.MLP`` for the deeper shapes), of
``mlp_numba.reference`` (NumPy, the course's way), of
PyTorch (when installed) and of scikit-learn's MLPClassifier (plain SGD, ``partial_fit`` on one
minibatch), and ``predict`` on 10,000 rows against its first product. The training rows are
10,000 random ones; a timing is one ``train`` call of ``--iters`` steps (200: four epochs), so
its input check and epoch-end bookkeeping weigh as in a short training run. Ratios are taken between
medians of the same run. ``--optimizers`` and ``--activations`` add tables of mlp_numba's step
over the same floor, timed in turn with it, per optimizer and per activation. Thread counts are
the process's own: set ``NUMBA_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` (and for PyTorch
``--torch-threads``) to compare 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import mlp_numba
from mlp_numba import TwoLayerNet
from mlp_numba import reference as ref_module

#: name -> (D, hidden width), or (D, (widths of several hidden layers)).
SHAPES = {
    "cifar10": (3072, 100),
    "cifar10-h500": (3072, 500),
    "mnist": (784, 100),
    "digits": (64, 100),
    "mnist-512-256": (784, (512, 256)),
    "cifar10-1024-512": (3072, (1024, 512)),
}
B, C = 200, 10
#: Training rows per shape: more than the last-level cache holds at the CIFAR-10 and MNIST
#: shapes, so minibatches are gathered from memory as in a real run.
ROWS = 10_000


#: Seconds of rest before each timing: idle OpenBLAS workers keep spinning for about 2**28
#: clock ticks (~0.1 s) after a multi-threaded product, Numba's and PyTorch's OpenMP workers
#: for a while after a parallel region, so every timing starts from quiet thread pools rather
#: than in the wake of the one before it.
QUIET_SECONDS = 0.3


def interleaved_medians(timers, repeat):
    """The median seconds per unit of each timer, timed in ``repeat`` rounds that take every
    timer once, each after ``QUIET_SECONDS`` of rest (and one untimed call of each first).

    A timer returns a list of seconds per unit. Timing the candidates in turn, rather than one
    after the other, makes a slow spell of the machine (seen here: steps 40% slower for tens
    of seconds, in a shared VM) weigh on all of them alike, so their ratios hold.
    """
    for timer in timers.values():
        timer()
    samples = {name: [] for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            time.sleep(QUIET_SECONDS)
            samples[name].extend(timer())
    return {name: float(np.median(v)) for name, v in samples.items()}


def timed(fn, per=1):
    """A timer of one call of ``fn``, ``per`` units of work."""

    def timer():
        start = time.perf_counter()
        fn()
        return [(time.perf_counter() - start) / per]

    return timer


def gemm_floor(X, W1, dZ):
    """A timer of the two big products of a step, NumPy into preallocated outputs: the step's
    floor. Five pairs a round, each timed."""
    Xb = np.ascontiguousarray(X[:B])
    Z = np.empty((B, W1.shape[1]), X.dtype)
    dW1 = np.empty_like(W1)
    pair = timed(lambda: (np.dot(Xb, W1, out=Z), np.dot(Xb.T, dZ, out=dW1)))
    return lambda: [t for _ in range(5) for t in pair()]


def deep_gemm_floor(X, H, dtype):
    """A timer of every product of a step of a net with hidden widths ``H``, NumPy into
    preallocated outputs: each layer's forward product, its weight gradient and (but for the
    first layer) the gradient at its input. Five steps' products a round, each timed."""
    rng = np.random.default_rng(1)
    widths = (X.shape[1], *H, C)
    Xb = np.ascontiguousarray(X[:B])
    Ws = [rng.standard_normal((a, b)).astype(dtype) for a, b in itertools.pairwise(widths)]
    As = [Xb] + [rng.standard_normal((B, w)).astype(dtype) for w in widths[1:]]
    Gs = [np.empty((B, w), dtype) for w in widths]
    dWs = [np.empty_like(W) for W in Ws]
    Gs[-1][...] = rng.standard_normal((B, C))

    def step():
        for k, W in enumerate(Ws):
            np.dot(As[k], W, out=As[k + 1])
        for k in range(len(Ws) - 1, -1, -1):
            np.dot(As[k].T, Gs[k + 1], out=dWs[k])
            if k:
                np.dot(Gs[k + 1], Ws[k].T, out=Gs[k])

    products = timed(step)
    return lambda: [t for _ in range(5) for t in products()]


def net_class(H, reference=False):
    """The class timed for hidden width(s) ``H``: TwoLayerNet, or MLP for several layers."""
    module = ref_module if reference else mlp_numba
    return module.MLP if isinstance(H, tuple) else module.TwoLayerNet


def train_timer(cls, X, y, D, H, dtype, iters, optimizer="sgd", activation="relu"):
    # One train call per timing, as in real use: it includes the input check (a pass over X,
    # 10,000 rows) and the epoch-end accuracies, spread over 200 steps (4 epochs) by default.
    # The deeper nets start from He's scale, a net whose layers carry a signal.
    std = None if isinstance(H, tuple) else 1e-3
    net = cls(D, H, C, std=std, dtype=dtype, seed=0, activation=activation)
    kw = dict(learning_rate=1e-4, learning_rate_decay=1.0, reg=1e-5, batch_size=B)
    if optimizer != "sgd":
        kw["optimizer"] = optimizer
    return timed(lambda: net.train(X, y, X[:B], y[:B], num_iters=iters, **kw), per=iters)


def torch_timer(X, y, D, H, dtype, iters, threads):
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    Xt, yt = torch.from_numpy(X).to(tdtype), torch.from_numpy(y)
    widths = (D, *(H if isinstance(H, tuple) else (H,)), C)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(tdtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    lossf = torch.nn.CrossEntropyLoss()
    weights = [layer.weight for layer in model if isinstance(layer, torch.nn.Linear)]
    rng = np.random.default_rng(0)

    def steps():
        for _ in range(iters):
            idx = torch.from_numpy(rng.integers(0, len(X), B))
            opt.zero_grad()
            loss = lossf(model(Xt[idx]), yt[idx]) + 1e-5 * sum((w * w).sum() for w in weights)
            loss.backward()
            opt.step()

    return timed(steps, per=iters)


def sklearn_timer(X, y, H, iters):
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    import warnings

    clf = MLPClassifier(
        hidden_layer_sizes=H if isinstance(H, tuple) else (H,),
        solver="sgd",
        momentum=0.0,
        nesterovs_momentum=False,
        learning_rate_init=1e-4,
        alpha=1e-5,
        batch_size=B,
        random_state=0,
    )
    classes = np.arange(C)
    rng = np.random.default_rng(0)

    def steps():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(iters):
                idx = rng.integers(0, len(X), B)
                clf.partial_fit(X[idx], y[idx], classes=classes)

    return timed(steps, per=iters)


def predict_timers(X, D, H, dtype):
    net = net_class(H)(D, H, C, std=1e-3, dtype=dtype, seed=0)
    Xp = np.ascontiguousarray(X[:10_000])
    W1 = net.params["W1"]
    return {"predict": timed(lambda: net.predict(Xp)), "predict_gemm": timed(lambda: Xp @ W1)}


def shape_data(D, H, dtype):
    """Training rows, labels, a W1 and a dZ for one shape, the same for every measurement."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, D)).astype(dtype)
    y = rng.integers(0, C, ROWS)
    width = H[0] if isinstance(H, tuple) else H
    W1 = rng.standard_normal((D, width)).astype(dtype)
    dZ = rng.standard_normal((B, width)).astype(dtype)
    return X, y, W1, dZ


def run_shape(name, dtype, args):
    D, H = SHAPES[name]
    X, y, W1, dZ = shape_data(D, H, dtype)
    row = {"shape": name, "D": D, "H": H, "B": B, "C": C, "dtype": np.dtype(dtype).name}
    timers = {
        "gemm": deep_gemm_floor(X, H, dtype) if isinstance(H, tuple) else gemm_floor(X, W1, dZ),
        "ours": train_timer(net_class(H), X, y, D, H, dtype, args.iters),
        "reference": train_timer(
            net_class(H, reference=True), X, y, D, H, dtype, max(5, args.iters // 5)
        ),
        "torch": None
        if args.skip_torch
        else torch_timer(X, y, D, H, dtype, args.iters, args.torch_threads),
        "sklearn": sklearn_timer(X, y, H, max(5, args.iters // 2))
        if dtype == np.float64 and not args.skip_sklearn
        else None,
    }
    timers = {k: t for k, t in timers.items() if t is not None}
    medians = interleaved_medians(timers, args.repeat)
    for name in ("gemm", "ours", "reference", "torch", "sklearn"):
        row[f"{name}_ms"] = 1e3 * medians[name] if name in medians else None
    medians = interleaved_medians(predict_timers(X, D, H, dtype), args.repeat)
    row["predict_ms"], row["predict_gemm_ms"] = (
        1e3 * medians["predict"],
        1e3 * medians["predict_gemm"],
    )
    return row


def run_variant(name, dtype, args, optimizer="sgd", activation="relu"):
    """One step of mlp_numba with ``optimizer`` and ``activation``, timed in turn with the
    GEMM floor."""
    D, H = SHAPES[name]
    X, y, W1, dZ = shape_data(D, H, dtype)
    timers = {
        "gemm": deep_gemm_floor(X, H, dtype) if isinstance(H, tuple) else gemm_floor(X, W1, dZ),
        "ours": train_timer(net_class(H), X, y, D, H, dtype, args.iters, optimizer, activation),
    }
    medians = interleaved_medians(timers, args.repeat)
    return {"shape": name, "dtype": np.dtype(dtype).name, "optimizer": optimizer,
            "activation": activation, "gemm_ms": 1e3 * medians["gemm"],
            "ours_ms": 1e3 * medians["ours"]}  # fmt: skip


class LayerWorker:
    """A process of its own whose Numba threads run on one threading layer (chosen once per
    process), timing mlp_numba's step on request, so that layers are timed in turn."""

    def __init__(self, layer):
        env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--layer-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        self.layer = self.ask({"what": "layer"})

    def ask(self, request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the worker for layer {self.layer!r} ended")
        return json.loads(answer)

    def timer(self, name, dtype, iters):
        self.ask({"what": "case", "shape": name, "dtype": np.dtype(dtype).name, "iters": iters})
        return lambda: self.ask({"what": "time"})

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def serve_layer():
    """The worker's side of :class:`LayerWorker`: one JSON request a line on stdin, one JSON
    answer a line on stdout."""
    import numba

    timer = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["what"] == "layer":
            TwoLayerNet(2, 2, 2).predict(np.zeros((1, 2)))  # starts the threads
            answer = numba.threading_layer()
        elif request["what"] == "case":
            D, H = SHAPES[request["shape"]]
            dtype = np.dtype(request["dtype"]).type
            X, y, _, _ = shape_data(D, H, dtype)
            timer = train_timer(TwoLayerNet, X, y, D, H, dtype, request["iters"])
            answer = timer()
        else:
            answer = timer()
        print(json.dumps(answer), flush=True)


def run_layers(name, dtype, args, workers):
    """mlp_numba's step on each threading layer (one worker process each), in turn with the
    GEMM floor timed here."""
    D, H = SHAPES[name]
    X, _, W1, dZ = shape_data(D, H, dtype)
    timers = {"gemm": gemm_floor(X, W1, dZ)}
    for worker in workers:
        timers[worker.layer] = worker.timer(name, dtype, args.iters)
    medians = interleaved_medians(timers, args.repeat)
    return {"shape": name, "dtype": np.dtype(dtype).name,
            **{f"{k}_ms": 1e3 * v for k, v in medians.items()}}  # fmt: skip


def layer_table(rows, layers):
    first = layers[0]
    lines = [
        "| shape | dtype | 2 GEMMs ms | "
        + " | ".join(f"{layer} ms" for layer in layers)
        + "".join(f" | {layer} / {first}" for layer in layers[1:])
        + " |",
        "|" + " --- |" * (3 + 2 * len(layers) - 1),
    ]
    for r in rows:
        cells = [r["shape"], r["dtype"], fmt(r["gemm_ms"])]
        cells += [fmt(r[f"{layer}_ms"]) for layer in layers]
        cells += [fmt(ratio(r[f"{layer}_ms"], r[f"{first}_ms"]), ".2f") for layer in layers[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variant_table(rows):
    lines = [
        "| shape | dtype | optimizer | activation | 2 GEMMs ms | mlp_numba ms | / GEMMs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        step_ratio = fmt(ratio(r["ours_ms"], r["gemm_ms"]), ".2f")
        lines.append(
            f"| {r['shape']} | {r['dtype']} | {r['optimizer']} | {r['activation']} "
            f"| {fmt(r['gemm_ms'])} | {fmt(r['ours_ms'])} | {step_ratio} |"
        )
    return "\n".join(lines)


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b is None else a / b


def markdown(rows):
    head = (
        "| shape | dtype | 2 GEMMs ms | mlp_numba ms | / GEMMs | reference ms | ref / ours "
        "| PyTorch ms | torch / ours | sklearn ms | sklearn / ours | predict 10k / GEMM |"
    )
    lines = [head, "|" + " --- |" * 12]
    # "2 GEMMs" is every product of the step for the deeper shapes (``deep_gemm_floor``).
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['dtype']} | {fmt(r['gemm_ms'])} | {fmt(r['ours_ms'])} "
            f"| {fmt(ratio(r['ours_ms'], r['gemm_ms']), '.2f')} | {fmt(r['reference_ms'])} "
            f"| {fmt(ratio(r['reference_ms'], r['ours_ms']), '.2f')} | {fmt(r['torch_ms'])} "
            f"| {fmt(ratio(r['torch_ms'], r['ours_ms']), '.2f')} | {fmt(r['sklearn_ms'])} "
            f"| {fmt(ratio(r['sklearn_ms'], r['ours_ms']), '.2f')} "
            f"| {fmt(ratio(r['predict_ms'], r['predict_gemm_ms']), '.2f')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"comma-separated, from {', '.join(SHAPES)}"
    )
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--iters", type=int, default=200, help="training steps per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per median")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--optimizers",
        default="",
        help="also time mlp_numba's step with these optimizers (comma-separated), e.g. "
        "momentum,nesterov,adam,adamw: a second table",
    )
    parser.add_argument(
        "--activations",
        default="",
        help="also time mlp_numba's SGD step with these activations (comma-separated), e.g. "
        "tanh,gelu: a third table",
    )
    parser.add_argument(
        "--threading-layers",
        default="",
        help="also time mlp_numba's SGD step on these Numba threading layers (comma-separated, "
        "e.g. omp,tbb,workqueue), each in a process of its own: a fourth table",
    )
    parser.add_argument("--skip-main", action="store_true", help="only the other tables")
    parser.add_argument("--layer-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layer_worker:
        return serve_layer()
    for name in args.shapes.split(","):
        if name not in SHAPES:
            parser.error(f"--shapes: unknown shape {name!r}; choose from {', '.join(SHAPES)}")

    cases = [(name, np.dtype(dt).type) for name in args.shapes.split(",")
             for dt in args.dtypes.split(",")]  # fmt: skip
    rows = [] if args.skip_main else [run_shape(name, dtype, args) for name, dtype in cases]
    machine = {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    if rows:
        print(markdown(rows), flush=True)
    variants = {}  # "optimizer" or "activation" -> rows of mlp_numba's step with each
    for kind, asked, first in (("optimizer", args.optimizers, "sgd"),
                               ("activation", args.activations, "relu")):  # fmt: skip
        variants[kind] = [
            run_variant(name, dtype, args, **{kind: value})
            for name, dtype in cases
            for value in ([first, *asked.split(",")] if asked else [])
        ]
        if variants[kind]:
            print("\n" + variant_table(variants[kind]), flush=True)
    optimizer_rows, activation_rows = variants["optimizer"], variants["activation"]
    layer_rows = []
    if args.threading_layers:
        workers = [LayerWorker(layer) for layer in args.threading_layers.split(",")]
        try:
            layer_rows = [run_layers(name, dtype, args, workers) for name, dtype in cases]
        finally:
            for worker in workers:
                worker.close()
        print("\n" + layer_table(layer_rows, [w.layer for w in workers]), flush=True)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            results = {"machine": machine, "rows": rows, "optimizers": optimizer_rows,
                       "activations": activation_rows, "threading_layers": layer_rows}  # fmt: skip
            json.dump(results, f, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
