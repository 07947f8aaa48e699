"""Hyperparameter search: grid and random trials, in processes and on a Dask LocalCluster."""

import json

import numpy as np
import pytest

from mlp_numba.cli import main
from mlp_numba.datasets import Preprocessing, Split
from mlp_numba.model_file import load_model
from mlp_numba.search import grid, random_configs, run_search


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 10))
    y = np.argmax(X @ rng.standard_normal((10, 3)), axis=1)
    prep = Preprocessing(1.0, np.zeros(10), (10,))
    return Split("toy", X[:300], y[:300], X[300:], y[300:], X[300:], y[300:], prep, 3)


def test_grid_and_random_spaces():
    configs = grid({"hidden_size": [10, 20], "learning_rate": [0.1, 0.5, 1.0]})
    assert len(configs) == 6 and {"hidden_size": 20, "learning_rate": 0.5} in configs
    draws = random_configs(
        {"learning_rate": ("loguniform", 1e-4, 1e-1), "hidden_size": ("int", 50, 60),
         "activation": ["relu", "tanh"]}, 50, seed=1)  # fmt: skip
    assert draws == random_configs(
        {"learning_rate": ("loguniform", 1e-4, 1e-1), "hidden_size": ("int", 50, 60),
         "activation": ["relu", "tanh"]}, 50, seed=1)  # fmt: skip
    rates = [d["learning_rate"] for d in draws]
    assert 1e-4 <= min(rates) and max(rates) <= 1e-1
    assert min(rates) < 1e-3 and max(rates) > 1e-2  # log-uniform: spread over decades
    assert {d["hidden_size"] for d in draws} <= set(range(50, 61))
    with pytest.raises(ValueError, match="searchable"):
        grid({"momentum": [0.9]})
    with pytest.raises(ValueError, match="unknown distribution"):
        random_configs({"reg": ("normal", 0, 1)}, 2)


def _check(result, n):
    assert len(result.table) == n
    scores = [row["val_acc"] for row in result.table]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8
    best = result.table[0]
    for row in result.table:  # one validation accuracy per epoch, the last the final one
        assert len(row["val_acc_by_epoch"]) == 15
        assert row["val_acc_by_epoch"][-1] == round(row["val_acc"], 6)
    assert (result.best_net.predict(np.zeros((1, 10))).shape == (1,)
            and result.best_net.hidden_size == best["hidden_size"])  # fmt: skip


def test_search_in_parallel_processes_is_reproducible(data):
    configs = grid({"hidden_size": [8, 16], "learning_rate": [0.01, 0.5]})
    one = run_search(data, configs, epochs=15, batch_size=50, n_jobs=2, progress=False)
    _check(one, 4)
    two = run_search(data, configs, epochs=15, batch_size=50, n_jobs=1, progress=False)
    assert [r["val_acc"] for r in one.table] == [r["val_acc"] for r in two.table]
    assert [r["trial"] for r in one.table] == [r["trial"] for r in two.table]


def test_search_in_processes_forked_from_one_that_trained(data):
    # joblib's "multiprocessing" backend forks this process, whose engine has already run
    # (on GNU OpenMP the children then run it on one thread: tests/test_processes.py).
    configs = grid({"hidden_size": [8, 16], "learning_rate": [0.01, 0.5]})
    here = run_search(data, configs, epochs=15, batch_size=50, n_jobs=1, progress=False)
    forked = run_search(data, configs, epochs=15, batch_size=50, n_jobs=2,
                        backend="multiprocessing", progress=False)  # fmt: skip
    _check(forked, 4)
    assert [r["val_acc"] for r in forked.table] == [r["val_acc"] for r in here.table]


@pytest.mark.slow
def test_search_on_a_dask_local_cluster(data, dask_cluster):
    client = dask_cluster
    configs = random_configs({"learning_rate": ("loguniform", 1e-2, 1.0),
                              "hidden_size": ("int", 8, 32)}, 4, seed=0)  # fmt: skip
    local = run_search(data, configs, epochs=15, batch_size=50, n_jobs=2, progress=False)
    remote = run_search(data, configs, epochs=15, batch_size=50, n_jobs=1,
                        scheduler=client.scheduler.address, progress=False)  # fmt: skip
    workers = set(client.scheduler_info()["workers"])
    tasks = client.get_task_stream()
    # The trials ran on the cluster's workers (both of them), not in this process.
    assert len(tasks) >= 4
    assert {t["worker"] for t in tasks} == workers
    _check(remote, 4)
    assert [r["val_acc"] for r in remote.table] == [r["val_acc"] for r in local.table]


def test_search_command(tmp_path, capsys):
    pytest.importorskip("sklearn")
    argv = ["search", "--trials", "3", "--learning-rate", "0.1:1", "--hidden-size", "20,40",
            "--epochs", "5", "-o", str(tmp_path), "-q"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "best validation accuracy:" in out
    table = json.loads((tmp_path / "results.json").read_text())
    assert len(table) == 3 and table[0]["val_acc"] >= table[-1]["val_acc"]
    assert (tmp_path / "results.csv").read_text().startswith("trial,")
    saved = load_model(tmp_path / "best_model.npz")
    assert saved.metadata["search"]["val_acc"] == table[0]["val_acc"]
    assert main(["evaluate", str(tmp_path / "best_model.npz"), "--dataset", "digits"]) == 0
    assert main(["search", "--learning-rate", "0.1:1"]) == 2
    assert "ranges (LOW:HIGH) need --trials" in capsys.readouterr().err
