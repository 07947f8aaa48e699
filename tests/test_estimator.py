"""MLPNumbaClassifier: scikit-learn's own estimator checks, and use in its tools."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from mlp_numba import MLPNumbaClassifier  # noqa: E402

# check_array_api_input does not apply: the kernels take NumPy arrays only. It skips itself
# unless SCIPY_ARRAY_API is set.


@parametrize_with_checks([MLPNumbaClassifier(), MLPNumbaClassifier(hidden_layer_sizes=(32, 16, 8))])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def test_string_labels_and_fitted_attributes(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]  # fmt: skip
    clf = make_pipeline(StandardScaler(), MLPNumbaClassifier(epochs=30, random_state=0))
    clf.fit(X, names)
    mlp = clf[-1]
    assert sorted(mlp.classes_) == sorted(set(names))
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names) > 0.95
    assert mlp.n_iter_ == 30 and len(mlp.loss_curve_) == 30 and len(mlp.validation_scores_) == 30
    assert mlp.loss_curve_[-1] < mlp.loss_curve_[0]
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[:5])), proba)


def test_same_random_state_same_model(digits):
    X, y = digits
    a = MLPNumbaClassifier(epochs=5, random_state=3).fit(X, y)
    b = MLPNumbaClassifier(epochs=5, random_state=3).fit(X, y)
    assert a.net_.params["W1"].tobytes() == b.net_.params["W1"].tobytes()


def test_partial_fit_streams_batches(digits):
    X, y = digits
    clf = MLPNumbaClassifier(learning_rate=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X[:100], y[:100])
    for start in range(0, 600, 100):
        clf.partial_fit(X[start : start + 100] / 16, y[start : start + 100], classes=np.arange(10))
    assert clf.n_iter_ == 6
    for _ in range(10):
        clf.partial_fit(X / 16, y)
    assert clf.score(X / 16, y) > 0.9
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:3] / 16, np.array([0, 1, 11]))


def test_model_selection_tools(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(), MLPNumbaClassifier(epochs=60, learning_rate=1e-2, random_state=0)
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.75  # chance is 0.1
    grid_params = {
        "mlpnumbaclassifier__hidden_size": [10, 40],
        "mlpnumbaclassifier__activation": ["relu", "tanh"],
    }
    grid = GridSearchCV(pipe, grid_params, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["mlpnumbaclassifier__hidden_size"] in (10, 40)
    search = RandomizedSearchCV(
        pipe,
        {"mlpnumbaclassifier__learning_rate": [1e-3, 3e-3, 1e-2],
         "mlpnumbaclassifier__optimizer": ["adam", "nesterov"]},
        n_iter=3, cv=2, random_state=0,
    )  # fmt: skip
    search.fit(X, y)
    assert search.best_score_ > 0.8


def test_early_stopping_keeps_the_best_epoch(digits):
    X, y = digits
    clf = MLPNumbaClassifier(epochs=400, learning_rate=1e-2, early_stopping=True, patience=5,
                             random_state=0).fit(X / 16, y)  # fmt: skip
    assert clf.n_iter_ < 400
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.score(X / 16, y) > 0.9


def test_warm_start_continues_training(digits):
    X, y = digits
    clf = MLPNumbaClassifier(epochs=5, learning_rate=1e-2, warm_start=True, random_state=0)
    clf.fit(X / 16, y)
    first = clf.net_.params["W1"].copy()
    clf.fit(X / 16, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < clf.loss_curve_[0]  # not restarted from fresh weights
    assert not np.array_equal(first, clf.net_.params["W1"])
    cold = MLPNumbaClassifier(epochs=5, learning_rate=1e-2, random_state=0).fit(X / 16, y)
    cold.fit(X / 16, y)
    assert cold.n_iter_ == 5


def test_several_hidden_layers(digits):
    from mlp_numba import MLP

    X, y = digits
    clf = MLPNumbaClassifier(hidden_layer_sizes=(64, 32), learning_rate=0.01, epochs=30,
                             random_state=0).fit(X, y)  # fmt: skip
    assert isinstance(clf.net_, MLP) and clf.net_.hidden_sizes == (64, 32)
    assert [p.shape for p in clf.net_.params.values()] == [(64, 64), (64,), (64, 32), (32,),
                                                           (32, 10), (10,)]  # fmt: skip
    assert clf.score(X, y) > 0.95
    search = GridSearchCV(
        MLPNumbaClassifier(learning_rate=0.01, epochs=10, random_state=0),
        {"hidden_layer_sizes": [(32,), (32, 16)]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in [(32,), (32, 16)]
