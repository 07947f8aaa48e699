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
        assert steps == list(range(1, MEDIAN_WARMUP_EPOCHS + 1))  # stopped after the warm-up
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
