"""Optuna sweeps: pruning on the learning curve, grids run once each, studies kept in SQLite and
resumed, clear errors."""

import json
import sys

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="pip install 'mlp-numba[optuna]'")

from mlp_numba.cli import main  # noqa: E402
from mlp_numba.datasets import prepare  # noqa: E402
from mlp_numba.sweep import MEDIAN_WARMUP_EPOCHS, run_study  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return prepare("digits", seed=0, progress=False)


def test_a_lagging_trial_is_pruned_at_an_epoch_end(digits, tmp_path):
    storage, name = f"sqlite:///{tmp_path / 'study.db'}", "pruning"
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for rate in (0.3, 0.2, 0.1, 0.25, 0.15, 1e-7, 2e-7):  # five that learn, then two that cannot
        study.enqueue_trial({"learning_rate": rate})
    study = run_study(
        digits, {"learning_rate": ("loguniform", 1e-7, 1.0)}, sampler="tpe", n_trials=7,
        pruner="median", storage=storage, study_name=name, epochs=6, batch_size=100,
    )  # fmt: skip
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 5 + ["PRUNED"] * 2
    for trial in study.trials[:5]:
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4, 5, 6]  # every epoch, the last too
    for trial in study.trials[5:]:
        steps = sorted(trial.intermediate_values)
        # Stopped at an epoch end, not before the warm-up's end, before the last epoch.
        assert steps == list(range(1, len(steps) + 1))
        assert MEDIAN_WARMUP_EPOCHS <= len(steps) < 6
    lagging = max(max(t.intermediate_values.values()) for t in study.trials[5:])
    assert study.best_net is not None and study.best_value > lagging + 0.2
    assert np.mean(study.best_net.predict(digits.X_val) == digits.y_val) == study.best_value


def test_a_grid_runs_each_point_once_and_a_study_resumes(digits, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"learning_rate": [0.1, 0.3], "hidden_size": [20, 40]}
    study = run_study(digits, space, sampler="grid", n_trials=4, pruner="none",
                      storage=storage, study_name="grid", epochs=2)  # fmt: skip
    points = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(study.trials) == 4 and len(points) == 4
    again = run_study(digits, {"learning_rate": ("loguniform", 0.01, 1.0)}, sampler="random",
                      n_trials=2, storage=storage, study_name="more", epochs=1)  # fmt: skip
    first = len(again.trials)
    resumed = run_study(digits, {"learning_rate": ("loguniform", 0.01, 1.0)}, sampler="random",
                        n_trials=4, storage=storage, study_name="more", epochs=1)  # fmt: skip
    assert first == 2 and len(resumed.trials) == 4  # the 2 kept, 2 more: 4 as asked


def test_bad_choices_are_named(digits, tmp_path):
    with pytest.raises(ValueError, match="sampler must be one of grid, random, tpe"):
        run_study(digits, {"reg": [1e-4]}, sampler="cmaes")
    with pytest.raises(ValueError, match="pruner must be one of none, median, hyperband"):
        run_study(digits, {"reg": [1e-4]}, pruner="sometimes")
    with pytest.raises(ValueError, match=r"storage .* cannot be opened"):
        run_study(digits, {"reg": [1e-4]}, storage=f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(ValueError, match="sampler 'grid' needs lists"):
        run_study(digits, {"reg": ("loguniform", 1e-5, 1e-3)}, sampler="grid")


def test_without_the_extra_the_error_names_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)
    argv = ["search", "--sampler", "tpe", "--trials", "2", "-o", str(tmp_path), "-q"]
    assert main(argv) == 2
    assert "pip install 'mlp-numba[optuna]'" in capsys.readouterr().err


def test_the_command_line_runs_a_pruned_tpe_study_in_sqlite(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "search", "--sampler", "tpe", "--trials", "6", "--pruner", "median", "--epochs", "3",
        "--learning-rate", "1e-3:1", "--hidden-size", "20,40", "-o", str(out), "-q",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "sampler tpe" in printed and "best validation accuracy" in printed
    rows = json.loads((out / "trials.json").read_text())
    assert len(rows) == 6 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert (out / "study.db").exists() and (out / "best_model.npz").exists()
    for picture in ("optimization_history", "param_importances", "intermediate_values"):
        assert (out / f"{picture}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same command again finds the study finished: it keeps its 6 trials, runs none.
    assert main(argv) == 0
    assert len(json.loads((out / "trials.json").read_text())) == 6
    # Another number of epochs is another study: refused by name, not mixed.
    other = list(argv)
    other[other.index("--epochs") + 1] = "4"
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "another epochs (epochs: 3 there, 4 here)" in err and "--study-name" in err


KILLED = """
import sys
from mlp_numba import sweep
from mlp_numba.datasets import prepare
sweep.HEARTBEAT_SECONDS, sweep.GRACE_SECONDS = 1, 2
sweep.run_study(prepare("digits", seed=0, progress=False), {"reg": ("loguniform", 1e-6, 1e-3)},
                sampler="random", n_trials=3, pruner="none", storage=sys.argv[1],
                study_name="killed", epochs=400, batch_size=100)
"""


def test_a_killed_sweep_resumes_with_its_running_trial_failed_and_rerun(
    digits, tmp_path, monkeypatch
):
    import signal
    import subprocess
    import time

    from mlp_numba import sweep

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    process = subprocess.Popen([sys.executable, "-c", KILLED, storage])
    states = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name="killed", storage=storage).trials
        except Exception:  # not created yet
            continue
        states = [t.state.name for t in trials]
        if states.count("COMPLETE") == 1 and states[-1] == "RUNNING":
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert states == ["COMPLETE", "RUNNING"], states  # killed during its second trial
    monkeypatch.setattr(sweep, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(sweep, "GRACE_SECONDS", 2)
    time.sleep(3)  # the killed trial's heartbeat is now stale
    study = sweep.run_study(digits, {"reg": ("loguniform", 1e-6, 1e-3)}, sampler="random",
                            n_trials=3, pruner="none", storage=storage, study_name="killed",
                            epochs=400, batch_size=100)  # fmt: skip
    states = [t.state.name for t in study.trials]
    assert states[:2] == ["COMPLETE", "FAIL"]  # the killed one is failed, not left running
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states


# OptunaSearchCV is "experimental" and imports Optuna's deprecated terminator: their warnings.
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_estimator_works_with_optuna_search_cv(digits):
    integration = pytest.importorskip(
        "optuna_integration", reason="pip install 'mlp-numba[optuna]'"
    )
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from mlp_numba import MLPNumbaClassifier

    space = {
        "learning_rate": FloatDistribution(1e-3, 1e-1, log=True),
        "activation": CategoricalDistribution(["relu", "tanh"]),
    }
    search = integration.OptunaSearchCV(
        MLPNumbaClassifier(hidden_size=32, epochs=5, random_state=0), space, n_trials=4, cv=2,
        random_state=0,
    )  # fmt: skip
    search.fit(digits.X_train[:600], digits.y_train[:600])
    assert len(search.trials_) == 4 and search.best_score_ > 0.5
    assert search.best_estimator_.predict(digits.X_val).shape == digits.y_val.shape


def test_the_best_model_survives_a_resume(digits, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"learning_rate": ("loguniform", 1e-7, 1.0)}
    study = optuna.create_study(storage=storage, study_name="kept", direction="maximize")
    for rate in (0.3, 0.1, 1e-7):  # the first two learn; the third and, later, the fourth not
        study.enqueue_trial({"learning_rate": rate})
    first = run_study(digits, space, sampler="random", n_trials=3, pruner="none",
                      storage=storage, study_name="kept", epochs=4)  # fmt: skip
    study.enqueue_trial({"learning_rate": 2e-7})
    # A new process would run this: it trains trial 3 only, and the best net is an earlier one's.
    resumed = run_study(digits, space, sampler="random", n_trials=4, pruner="none",
                        storage=storage, study_name="kept", epochs=4)  # fmt: skip
    assert len(resumed.trials) == 4 and resumed.best_trial.number == first.best_trial.number < 3
    assert resumed.best_net_trial == resumed.best_trial.number
    accuracy = np.mean(resumed.best_net.predict(digits.X_val) == digits.y_val)
    assert accuracy == resumed.best_value
    np.testing.assert_array_equal(resumed.best_net.params["W1"], first.best_net.params["W1"])
    meta = resumed.best_net_metadata
    assert meta["study"] == "kept" and meta["trial"] == resumed.best_trial.number
    # A models folder that lacks the best trial's (other machines' workers, no shared folder):
    # a warning, and no best net, rather than a failure at the end of the sweep.
    elsewhere = tmp_path / "elsewhere"
    with pytest.warns(RuntimeWarning, match="need a folder they all share"):
        again = run_study(digits, space, sampler="random", n_trials=4, storage=storage,
                          study_name="kept", epochs=4, models=elsewhere)  # fmt: skip
    assert again.best_net is None and again.best_net_metadata is None
    # Each complete trial's model is kept, beside the SQLite file by default.
    kept = {t.user_attrs["model"] for t in resumed.trials if t.state.name == "COMPLETE"}
    assert len(kept) == 4 and kept == {p.name for p in (tmp_path / "study-models").iterdir()}


def test_a_database_password_stays_out_of_what_is_written():
    from mlp_numba.sweep import public_url

    shown = public_url("postgresql://sweeper:s3cret@db.example:5432/studies")
    assert shown == "postgresql://sweeper:***@db.example:5432/studies"


@pytest.mark.parametrize("sampler", ["grid", "tpe"])
def test_two_workers_share_one_study(digits, tmp_path, sampler):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    if sampler == "grid":
        space = {"learning_rate": [0.1, 0.3], "hidden_size": [20, 40, 60]}
    else:
        space = {"learning_rate": ("loguniform", 1e-3, 1.0), "hidden_size": [20, 40]}
    study = run_study(digits, space, sampler=sampler, n_trials=6, pruner="none",
                      storage=storage, study_name="shared", epochs=2, n_jobs=2)  # fmt: skip
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    points = [tuple(sorted(t.params.items())) for t in finished]
    if sampler == "grid":
        assert sorted(points) == sorted(set(points)) and len(points) == 6  # each point once
    else:
        assert 6 <= len(finished) <= 7 and len(set(points)) == len(points)  # at most K - 1 over
    assert study.best_net is not None  # trained in a worker, read back from the models folder
    assert np.mean(study.best_net.predict(digits.X_val) == digits.y_val) == study.best_value


def test_a_remote_cluster_cannot_share_an_sqlite_file(digits, tmp_path):
    with pytest.raises(ValueError, match="cannot reach an SQLite file"):
        run_study(digits, {"reg": [1e-4]}, storage=f"sqlite:///{tmp_path / 's.db'}",
                  scheduler="tcp://10.0.0.7:8786")  # fmt: skip
    with pytest.raises(ValueError, match="needs a storage URL"):
        run_study(digits, {"reg": [1e-4]}, n_jobs=2)


class _Clock:
    """Stands in for time.sleep: each wait lets the test move the other trials on."""

    def __init__(self, on_wait):
        self.waits, self.on_wait = 0, on_wait

    def __call__(self, seconds):
        self.waits += 1
        self.on_wait(self.waits)


def _two_trials_on_grid_point_0(study):
    from optuna.trial import TrialState

    first, second = study.ask(), study.ask()
    second_id = second._trial_id
    study._storage.set_trial_system_attr(second_id, "grid_id", 0)  # as a racing worker's draw
    return first, second, TrialState


def test_a_grid_point_held_by_another_trial_is_not_trained_twice():
    from mlp_numba._optuna_trials import DuplicateGridPoint, claim_grid_point

    def grid_study():
        grid = optuna.samplers.GridSampler({"reg": [1e-4, 1e-3]}, seed=0)
        return optuna.create_study(sampler=grid)

    # The lower-numbered holder runs on past a wait: the higher one is the duplicate.
    study = grid_study()
    first, second, _ = _two_trials_on_grid_point_0(study)
    clock = _Clock(lambda n: None)
    with pytest.raises(DuplicateGridPoint, match="trial 1: grid point 0 is trial 0's"):
        claim_grid_point(optuna, second, wait=5, heartbeats=False, sleep=clock)
    assert clock.waits == 1 and second.user_attrs["duplicate_of"] == 0
    # The higher-numbered holder finishes while the lower one waits: the lower is the duplicate.
    study = grid_study()
    first, second, states = _two_trials_on_grid_point_0(study)
    clock = _Clock(lambda n: study.tell(second, 0.5) if n == 2 else None)
    with pytest.raises(DuplicateGridPoint, match="grid point 0 is trial 1's"):
        claim_grid_point(optuna, first, wait=5, heartbeats=False, sleep=clock)
    # The holder fails (killed, then found stale): the waiting trial trains the point.
    study = grid_study()
    first, second, states = _two_trials_on_grid_point_0(study)
    clock = _Clock(lambda n: study.tell(second, state=states.FAIL))
    claim_grid_point(optuna, first, wait=5, heartbeats=False, sleep=clock)
    assert clock.waits == 1


def test_the_command_line_resumes_a_run_folder(tmp_path, capsys):
    from mlp_numba.model_file import load_model

    out = tmp_path / "run"
    argv = ["search", "--sampler", "random", "--trials", "3", "--epochs", "2", "--learning-rate",
            "1e-2:1", "--jobs", "2", "-o", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    first = json.loads((out / "trials.json").read_text())
    assert main(["search", "--resume", str(out), "--trials", "5", "-q"]) == 0
    rows = json.loads((out / "trials.json").read_text())
    finished = [r for r in rows if r["state"] == "COMPLETE"]
    assert 5 <= len(finished) <= 6 and rows[: len(first)] == first  # kept, not rerun
    saved = load_model(out / "best_model.npz")
    best = max(finished, key=lambda r: r["val_acc"])
    assert saved.metadata["search"]["study"] == "search-digits"
    assert saved.metadata["search"]["trial"] == best["trial"]
    capsys.readouterr()
    assert main(["search", "--resume", str(out), "--epochs", "4"]) == 2
    assert "--epochs cannot be given with it" in capsys.readouterr().err
    assert main(["search", "--resume", str(tmp_path)]) == 2
    assert "no sweep.json there" in capsys.readouterr().err
    (out / "sweep.json").write_text("{not json")
    assert main(["search", "--resume", str(out)]) == 2
    assert "sweep.json cannot be read" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_on_a_dask_local_cluster(digits, tmp_path, dask_cluster):
    client = dask_cluster
    storage = f"sqlite:///{tmp_path / 'study.db'}"  # the workers run on this machine
    study = run_study(digits, {"learning_rate": [0.1, 0.3], "hidden_size": [20, 40]},
                      sampler="grid", n_trials=4, pruner="none", storage=storage,
                      study_name="dask", epochs=2, n_jobs=2,
                      scheduler=client.scheduler.address)  # fmt: skip
    workers = set(client.scheduler_info()["workers"])
    tasks = client.get_task_stream()
    assert {t["worker"] for t in tasks} == workers  # both workers ran trials
    points = [tuple(sorted(t.params.items())) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(points) == 4 and len(set(points)) == 4


def test_a_real_postgresql_server(digits, tmp_path):
    """Run when MLP_NUMBA_TEST_POSTGRES holds a server's URL (postgresql://user:pw@host/db)."""
    import os
    import uuid

    url = os.environ.get("MLP_NUMBA_TEST_POSTGRES")
    if not url:
        pytest.skip("MLP_NUMBA_TEST_POSTGRES is not set (a PostgreSQL server's URL)")
    pytest.importorskip("psycopg", reason="pip install 'mlp-numba[postgresql]'")
    name = f"mlp-numba-test-{uuid.uuid4().hex[:8]}"
    space = {"learning_rate": [0.1, 0.3], "hidden_size": [20, 40, 60]}
    try:
        half = run_study(digits, space, sampler="grid", n_trials=3, pruner="none", storage=url,
                         study_name=name, epochs=2, n_jobs=2, models=tmp_path)  # fmt: skip
        finished = [t for t in half.trials if t.state.name == "COMPLETE"]
        assert 3 <= len(finished) <= 4  # two workers: at most one over
        study = run_study(digits, space, sampler="grid", n_trials=6, pruner="none", storage=url,
                          study_name=name, epochs=2, n_jobs=2, models=tmp_path)  # fmt: skip
        finished = [t for t in study.trials if t.state.name == "COMPLETE"]
        points = {tuple(sorted(t.params.items())) for t in finished}
        assert len(finished) == 6 and len(points) == 6  # resumed, each grid point once
        assert np.mean(study.best_net.predict(digits.X_val) == digits.y_val) == study.best_value
        with pytest.raises(ValueError, match="another epochs"):
            run_study(digits, space, sampler="grid", n_trials=6, storage=url, study_name=name,
                      epochs=3)  # fmt: skip
    finally:
        optuna.delete_study(study_name=name, storage=url)
