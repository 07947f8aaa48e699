"""What median pruning saves in a TPE sweep: the same 30-trial search with and without it.

Usage::

    python bench/sweep_pruning.py --data-dir ../shared/data/mnist
    python bench/sweep_pruning.py --data-dir ../shared/data/mnist --seeds 0 1 2 --trials 30

Each search is ``mlp-numba search --sampler tpe --pruner {median,none}`` in a fresh process
(``--jobs 1``, its own run folder and SQLite study), on MNIST with the space below, 10 epochs a
trial; pruned trials count among the ``--trials``. For each seed and pruner it reports the
epochs trained in total (the ``epochs`` each trial records: where a pruned trial stopped), the
whole process's wall time and the best validation accuracy; then the medians over the seeds
and the ratios pruned / unpruned.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = ["--learning-rate", "1e-5:1", "--hidden-size", "32:256", "--reg", "1e-6:1e-2"]


def run_one(data_dir, pruner, seed, trials, epochs, out_dir):
    argv = [sys.executable, "-m", "mlp_numba", "search", "--dataset", "mnist", "--data-dir",
            str(data_dir), "--sampler", "tpe", "--trials", str(trials), "--pruner", pruner,
            "--epochs", str(epochs), "--seed", str(seed), "--jobs", "1", "-o", str(out_dir),
            "-q", *SPACE]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = json.loads((out_dir / "trials.json").read_text())
    finished = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    return {
        "epochs": sum(r["epochs"] for r in finished),
        "wall": wall,
        "best": max(r["val_acc"] for r in rows if r["state"] == "COMPLETE"),
        "pruned": sum(r["state"] == "PRUNED" for r in rows),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pruners", nargs="+", default=["median", "none"],
                        choices=["median", "hyperband", "none"])  # fmt: skip
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    results = {p: [] for p in args.pruners}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for pruner in args.pruners:  # alternating, so drift hits both alike
                out = Path(tmp) / f"{pruner}-{seed}"
                r = run_one(args.data_dir, pruner, seed, args.trials, args.epochs, out)
                results[pruner].append(r)
                print(f"seed {seed} pruner {pruner:6}: {r['epochs']:4d} epochs, "
                      f"{r['wall']:6.1f} s, best {r['best']:.4f}, {r['pruned']} pruned",
                      flush=True)  # fmt: skip
    med = {p: {k: statistics.median(r[k] for r in rs) for k in ("epochs", "wall", "best")}
           for p, rs in results.items()}  # fmt: skip
    for p in args.pruners:
        m = med[p]
        print(f"median over seeds, pruner {p:6}: {m['epochs']:.0f} epochs, {m['wall']:.1f} s, "
              f"best {m['best']:.4f}")  # fmt: skip
    for p in (p for p in args.pruners if p != "none" and "none" in med):
        print(f"{p}/none: epochs {med[p]['epochs'] / med['none']['epochs']:.3f}, wall "
              f"{med[p]['wall'] / med['none']['wall']:.3f}, best accuracy "
              f"{100 * (med[p]['best'] - med['none']['best']):+.2f} points")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "medians": med}, indent=1))


if __name__ == "__main__":
    main()
