"""One compile per dtype: every activation, optimizer, operation and kind of input afterwards
runs on the same compiled code, and read-only inputs (memmaps included) work everywhere."""

import subprocess
import sys

import numpy as np
import pytest
from numba.core import event

from mlp_numba import ACTIVATIONS, MLP, TwoLayerNet
from mlp_numba._optimizer_spec import OPTIMIZERS

DTYPES = [np.float64, np.float32]


def _data(n=120, D=12, C=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), rng.integers(0, C, n)


def _inputs(X, tmp_path):
    """The same rows as a writeable array and in every other form a user may pass."""
    read_only = X.copy()
    read_only.setflags(write=False)
    np.save(tmp_path / "X.npy", X)
    doubled = np.repeat(X, 2, axis=0)
    return {
        "writeable": X,
        "read-only": read_only,
        "memmap": np.load(tmp_path / "X.npy", mmap_mode="r"),
        "fortran": np.asfortranarray(X),
        "strided": doubled[::2],
        "list": X.tolist(),
    }


def _use(net, X, y):
    """Every entry point on (X, y); the results, for comparison."""
    y_val = y[:40]
    history = net.train(X, y, X[:40], y_val, learning_rate=0.05, num_iters=6, batch_size=30)
    loss, grads = net.loss(X, y, reg=0.1)
    return (
        history["loss_history"],
        net.loss(X),
        net.predict(X),
        net.predict_proba(X),
        loss,
        grads["W1"],
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_compile_after_the_first_train(dtype, tmp_path):
    X, y = _data()
    TwoLayerNet(12, 9, 4, dtype=dtype, seed=0).train(X, y, X, y, num_iters=2, batch_size=20)
    integers = (X * 10).astype(np.int64)
    images = np.clip(X * 40 + 128, 0, 255).astype(np.uint8)
    with event.install_recorder("numba:compile") as compiles:
        for activation in ACTIVATIONS:
            for inputs in (*_inputs(X, tmp_path).values(), integers, images):
                _use(TwoLayerNet(12, 9, 4, activation=activation, dtype=dtype, seed=1), inputs, y)
        for optimizer in OPTIMIZERS:
            net = TwoLayerNet(12, 9, 4, dtype=dtype, seed=2)
            net.train(X, y, X, y, num_iters=5, batch_size=25, optimizer=optimizer)
    started = [e for e in compiles.buffer if e[1].is_start]
    assert not started, [e[1].data.get("dispatcher") for e in started][:5]


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_compile_serves_every_depth_and_width(dtype, tmp_path):
    """MLP's engine: after one net's first train, other depths, widths, activations,
    optimizers, dropout and kinds of input compile nothing."""
    X, y = _data()
    MLP(12, (9, 7), 4, dtype=dtype, seed=0).train(X, y, X, y, num_iters=2, batch_size=20)
    integers = (X * 10).astype(np.int64)
    with event.install_recorder("numba:compile") as compiles:
        for k, hidden in enumerate(((5,), (9, 7), (30, 20, 10), (8, 8, 8, 8, 8))):
            activation = list(ACTIVATIONS)[k]
            for inputs in (*_inputs(X, tmp_path).values(), integers):
                _use(MLP(12, hidden, 4, activation=activation, dtype=dtype, seed=1), inputs, y)
        for optimizer in OPTIMIZERS:
            net = MLP(12, (6, 5), 4, dtype=dtype, seed=2)
            net.train(X, y, X, y, num_iters=5, batch_size=25, optimizer=optimizer, dropout=0.2)
    started = [e for e in compiles.buffer if e[1].is_start]
    assert not started, [e[1].data.get("dispatcher") for e in started][:5]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("first", [TwoLayerNet, MLP])
def test_both_classes_share_one_compile(first, dtype):
    """One engine: whichever class trains first, the other compiles nothing."""
    X, y = _data()
    second = MLP if first is TwoLayerNet else TwoLayerNet
    hidden = 9 if first is TwoLayerNet else (9,)
    first(12, hidden, 4, dtype=dtype, seed=0).train(X, y, X, y, num_iters=2, batch_size=20)
    with event.install_recorder("numba:compile") as compiles:
        hidden = (9, 7) if second is MLP else 9
        _use(second(12, hidden, 4, dtype=dtype, seed=1), X, y)
    started = [e for e in compiles.buffer if e[1].is_start]
    assert not started, [e[1].data.get("dispatcher") for e in started][:5]


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_only_inputs_work_in_every_entry_point(dtype, tmp_path):
    """Read-only arrays, memmaps and other layouts give bitwise the results of a writeable
    C-ordered array, in training, scoring and the loss; read-only labels too."""
    X, y = _data(seed=3)
    X = X.astype(dtype)
    y_read_only = y.copy()
    y_read_only.setflags(write=False)
    expected = _use(TwoLayerNet(12, 9, 4, dtype=dtype, seed=4), X, y)
    for name, inputs in _inputs(X, tmp_path).items():
        labels = y_read_only if name != "writeable" else y
        results = _use(TwoLayerNet(12, 9, 4, dtype=dtype, seed=4), inputs, labels)
        for got, want in zip(results, expected, strict=True):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)


def _modules_after(code):
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return out.stdout


@pytest.mark.slow
def test_the_reference_and_the_command_line_help_import_no_numba():
    assert "'numba'" not in _modules_after("import mlp_numba.reference")
    assert "'numba'" not in _modules_after("import mlp_numba; mlp_numba.ACTIVATIONS")
    for command in (["--help"], ["train", "--help"], ["--version"]):
        code = (
            "from mlp_numba.cli import main\n"
            f"try:\n    main({command!r})\nexcept SystemExit:\n    pass"
        )
        assert "'numba'" not in _modules_after(code), command
    # Nor does the compiled net's class, until its engine is first needed.
    assert "'numba'" not in _modules_after("from mlp_numba import TwoLayerNet, MLP")
    used = "import numpy as np, mlp_numba\nmlp_numba.TwoLayerNet(3, 2, 2).loss(np.eye(3))"
    assert "'numba'" in _modules_after(used)


def test_the_garbage_collector_is_paused_while_compiling_and_restored_after():
    import gc
    import threading

    from mlp_numba._engine._jit import gc_paused

    was_enabled = gc.isenabled()
    try:
        gc.enable()
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():  # nested: the inner block's end does not turn it back on
                pass
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(ValueError), gc_paused():
            raise ValueError("a failed compile")
        assert gc.isenabled()
        # Blocks in two threads overlap: the last one out restores the collector.
        inside, release = threading.Event(), threading.Event()

        def other():
            with gc_paused():
                inside.set()
                release.wait(10)

        thread = threading.Thread(target=other)
        with gc_paused():
            thread.start()
            assert inside.wait(10)
        assert not gc.isenabled()  # the other thread's block is still open
        release.set()
        thread.join(10)
        assert gc.isenabled()
        # A collector the caller disabled stays disabled.
        gc.disable()
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()
