"""Sampling by permutation and early stopping: the same plan in both nets."""

import numpy as np
import pytest

from mlp_numba import TwoLayerNet, reference
from mlp_numba._training.plan import BatchSampler
from mlp_numba.gradient_check import rel_error

data = np.random.default_rng(7)
X = data.standard_normal((90, 6))
y = np.argmax(X @ data.standard_normal((6, 3)), axis=1)
X_val = data.standard_normal((40, 6))
y_val = data.integers(0, 3, 40)  # noisy: the validation score soon stops improving


def test_permutation_sampling_visits_every_row_once_per_epoch():
    sampler = BatchSampler(np.random.default_rng(0), 10, 4, "permutation")
    stream = np.concatenate([sampler.draw(2).ravel(), sampler.draw(3).ravel()])
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))


@pytest.mark.parametrize("sampling", ["replacement", "permutation"])
def test_sampling_matches_the_reference(sampling):
    nets = [cls(6, 8, 3, std=0.1, seed=2) for cls in (TwoLayerNet, reference.TwoLayerNet)]
    for net in nets:
        net.train(X, y, X_val, y_val, learning_rate=0.1, num_iters=50, batch_size=16,
                  sampling=sampling)  # fmt: skip
    for key in nets[0].params:
        assert rel_error(nets[0].params[key], nets[1].params[key]) < 1e-10


@pytest.mark.parametrize("monitor", ["val_acc", "val_loss"])
def test_early_stopping_restores_the_best_params(monitor):
    kw = dict(learning_rate=0.5, num_iters=2000, batch_size=10, iterations_per_epoch=9,
              optimizer="momentum", schedule="constant")  # fmt: skip
    stop = {"patience": 3, "monitor": monitor}
    ours, ref = (cls(6, 8, 3, std=0.1, seed=2) for cls in (TwoLayerNet, reference.TwoLayerNet))
    h1 = ours.train(X, y, X_val, y_val, early_stopping=stop, **kw)
    h2 = ref.train(X, y, X_val, y_val, early_stopping=stop, **kw)
    assert h1["stopped_early"] and len(h1["loss_history"]) < 2000
    assert h1["best_iteration"] == h2["best_iteration"]
    assert len(h1["loss_history"]) == len(h2["loss_history"])
    assert len(h1["val_acc_history"]) == h1["best_iteration"] // 9 + 1 + 3
    # The restored params are those after best_iteration iterations.
    twin = TwoLayerNet(6, 8, 3, std=0.1, seed=2)
    twin.train(X, y, X_val, y_val, **{**kw, "num_iters": h1["best_iteration"]})
    for key in ours.params:
        assert ours.params[key].tobytes() == twin.params[key].tobytes()
        assert rel_error(ours.params[key], ref.params[key]) < 1e-10
    if monitor == "val_acc":
        assert h1["best_val_score"] == max(h1["val_acc_history"])


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"sampling": "shuffle"}, ValueError, "sampling must be one of"),
        ({"early_stopping": {"patience": 0}}, ValueError, "patience must be >= 1"),
        ({"early_stopping": {"monitor": "loss"}}, ValueError, "monitor must be one of"),
        ({"early_stopping": {"wait": 3}}, ValueError, "early_stopping has"),
        ({"early_stopping": "yes"}, TypeError, "early_stopping must be"),
    ],
)
@pytest.mark.parametrize("cls", [TwoLayerNet, reference.TwoLayerNet])
def test_bad_plan_arguments(cls, kw, error, message):
    with pytest.raises(error, match=message):
        cls(6, 8, 3, seed=0).train(X, y, X_val, y_val, **kw)
