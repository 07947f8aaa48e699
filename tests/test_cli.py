"""The mlp-numba command line: a full run, its outputs, user errors and Ctrl-C."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from mlp_numba.cli import main
from mlp_numba.datasets import load_test_split, prepare
from mlp_numba.model_file import load_model

pytest.importorskip("sklearn")  # the default data set (digits) comes with scikit-learn


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--iterations", "300", "--seed", "2", "-o", str(out), "-q"]) == 0
    return out


def test_train_writes_model_history_and_plots(trained, capsys):
    names = sorted(p.name for p in trained.iterdir())
    assert names == ["accuracy.png", "history.json", "loss.png", "model.npz", "weights.png"]
    for png in ("accuracy.png", "loss.png", "weights.png"):
        assert (trained / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((trained / "history.json").read_text())
    assert len(history["loss_history"]) == history["iterations_done"] == 300
    assert history["interrupted"] is False and history["settings"]["seed"] == 2
    assert len(history["val_acc_history"]) == 300 // history["iterations_per_epoch"] + 1
    saved = load_model(trained / "model.npz")
    assert saved.metadata["test_accuracy"] == history["test_accuracy"]
    # The saved model reproduces the printed test accuracy on the same rows.
    data = prepare("digits", seed=2)
    accuracy = (saved.net.predict(data.X_test) == data.y_test).mean()
    assert accuracy == history["test_accuracy"] > 0.9


def test_train_with_another_optimizer(tmp_path):
    argv = ["train", "--iterations", "30", "--optimizer", "adam", "--schedule", "cosine",
            "--learning-rate", "0.001", "-o", str(tmp_path), "-q", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    saved = load_model(tmp_path / "model.npz")
    assert saved.metadata["settings"]["optimizer"] == "adam"
    assert saved.net.optimizer_state["name"] == "adam" and saved.net.optimizer_state["step"] == 30


def test_train_a_deeper_net(tmp_path, capsys):
    argv = ["train", "--hidden-sizes", "64,32", "--epochs", "20", "--dropout", "0.1", "-o",
            str(tmp_path), "-q", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "64-64-32-10 relu net" in out
    saved = load_model(tmp_path / "model.npz")
    assert type(saved.net).__name__ == "MLP" and saved.net.hidden_sizes == (64, 32)
    assert saved.metadata["settings"]["hidden_sizes"] == [64, 32]
    assert saved.metadata["settings"]["dropout"] == 0.1
    assert saved.metadata["test_accuracy"] > 0.9
    assert main(["evaluate", str(tmp_path / "model.npz"), "--dataset", "digits"]) == 0


def test_search_varies_depth_and_widths(tmp_path, capsys):
    argv = ["search", "--hidden-sizes", "32,32-16", "--learning-rate", "0.3", "--epochs", "2",
            "-o", str(tmp_path), "-q"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert sorted(tuple(r["hidden_sizes"]) for r in rows) == [(32,), (32, 16)]
    best = load_model(tmp_path / "best_model.npz").net
    assert best.hidden_sizes == tuple(rows[0]["hidden_sizes"])


def test_train_with_early_stopping(tmp_path, capsys):
    argv = ["train", "--epochs", "400", "--early-stopping", "3", "-o", str(tmp_path), "-q",
            "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    assert "stopped early after" in capsys.readouterr().out
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["stopped_early"] and not history["interrupted"]
    assert history["iterations_done"] < 400 * history["iterations_per_epoch"]


def test_evaluate_reports_the_same_accuracy(trained, capsys):
    assert main(["evaluate", str(trained / "model.npz"), "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    expected = json.loads((trained / "history.json").read_text())["test_accuracy"]
    assert f"test accuracy: {expected:.4f}" in out


def test_predict_raw_images(trained, tmp_path, capsys):
    images, _ = load_test_split("digits")
    np.save(tmp_path / "x.npy", images[:7])
    np.save(tmp_path / "one.npy", images[3])
    model = str(trained / "model.npz")
    net = load_model(model).net
    expected = prepare("digits", seed=2).X_test[:7]
    assert main(["predict", model, str(tmp_path / "x.npy")]) == 0
    printed = [int(line) for line in capsys.readouterr().out.split()]
    assert printed == net.predict(expected).tolist()
    assert main(["predict", model, str(tmp_path / "x.npy"), "--proba", "-o",
                 str(tmp_path / "p.npy")]) == 0  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), net.predict_proba(expected))
    assert "wrote 7 probabilities" in capsys.readouterr().out
    assert main(["predict", model, str(tmp_path / "one.npy")]) == 0
    assert capsys.readouterr().out.split() == [str(printed[3])]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--learning-rate", "abc"], "--learning-rate: expected a number"),
        (["train", "--reg", "-1"], "--reg: must be a finite number >= 0"),
        (["train", "--batch-size", "0"], "--batch-size: must be >= 1"),
        (["train", "--activation", "nope"], "invalid choice: 'nope'"),
        (["train", "--dataset", "svhn"], "invalid choice: 'svhn'"),
        (["train", "--epochs", "2", "--iterations", "3"], "not allowed with argument"),
        (["train", "--dataset", "mnist", "--data-dir", "/no/such/dir"], "no train-images"),
        (["train", "--threads", "999"], "more than the"),
        (["train", "--seed", "-3"], "--seed must be >= 0"),
        (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
        (["train", "--hidden-sizes", "64,,32"], "expected widths like 512,256"),
        (["train", "--hidden-sizes", "64,0"], "--hidden-sizes: must be >= 1"),
        (["train", "--hidden-size", "9", "--hidden-sizes", "9,9"], "not allowed with argument"),
        (["train", "--dropout", "1"], "--dropout: must be below 1"),
        (["train", "--dropout", "0.2"], "--dropout needs --hidden-sizes"),
        (["evaluate", "missing.npz", "--dataset", "digits"], "No such file"),
        (["predict", "missing.npz", "x.npy"], "No such file"),
        ([], "required: COMMAND"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_damaged_model_and_input_files(trained, tmp_path, capsys):
    bad_model = tmp_path / "bad.npz"
    bad_model.write_bytes((trained / "model.npz").read_bytes()[:500])
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8)))
    (tmp_path / "text.npy").write_text("not numpy")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5)))
    model = str(trained / "model.npz")
    cases = [
        (["predict", str(bad_model), str(tmp_path / "x.npy")], "damaged"),
        (["evaluate", str(bad_model), "--dataset", "digits"], "damaged"),
        (["predict", model, str(tmp_path / "text.npy")], "not a .npy file"),
        (["predict", model, str(tmp_path / "wrong.npy")], "64-value inputs"),
        (["evaluate", model, "--dataset", "cifar10", "--data-dir", str(tmp_path)], "not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_no_traceback_from_the_installed_command(tmp_path):
    command = shutil.which("mlp-numba")
    argv = [command] if command else [sys.executable, "-m", "mlp_numba"]
    done = subprocess.run([*argv, "evaluate", str(tmp_path / "none.npz"), "--dataset", "digits"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("mlp-numba evaluate: error:") and "Traceback" not in done.stderr


@pytest.mark.slow
def test_ctrl_c_stops_training_and_keeps_the_model(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlp_numba", "train", "--iterations", "100000000", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    started = threading.Event()
    err_lines = []

    def read_stderr():
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("train:") and "loss" in line:  # training is running
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(300), "no progress line: " + "".join(err_lines)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        stdout = proc.stdout.read()  # stderr belongs to the reader thread alone
    finally:
        proc.kill()
    reader.join(30)
    assert proc.returncode == 130, "".join(err_lines)
    assert "training interrupted at iteration" in "".join(err_lines)
    assert "test accuracy:" in stdout
    saved = load_model(out / "model.npz")
    history = json.loads((out / "history.json").read_text())
    assert saved.metadata["interrupted"] is True and history["interrupted"] is True
    assert 0 < saved.metadata["iterations_done"] < 100_000_000
    assert len(history["loss_history"]) == saved.metadata["iterations_done"]
    assert "Traceback" not in "".join(err_lines)


def test_progress_bar_in_a_log_prints_each_state_once():
    import io

    from mlp_numba._progress import progress_bar

    out = io.StringIO()
    bar = progress_bar(10, "train", stream=out, log_interval=0.0)
    for done in (1, 5, 10):
        bar.update(done, f"loss {1 / done:.2f}")
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split("|")[-1].strip() for line in lines] == [
        "0/10 [00:00]", "1/10 [00:00, loss 1.00]", "5/10 [00:00, loss 0.20]",
        "10/10 [00:00, loss 0.10]"]  # fmt: skip


def test_progress_bar_in_a_log_prints_a_line_per_interval_at_most():
    import io

    from mlp_numba._progress import progress_bar

    out = io.StringIO()
    bar = progress_bar(1000, "train", stream=out, log_interval=60.0)
    for done in range(1, 1001):
        bar.update(done, "loss 1.0")
    bar.close()
    # The first state, and the last one when the bar closes: nothing in between.
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "1000/1000" in lines[-1], lines
