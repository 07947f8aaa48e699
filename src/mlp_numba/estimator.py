"""``MLPNumbaClassifier``: the compiled net as a scikit-learn classifier.

Needs scikit-learn (``pip install 'mlp-numba[cli]'`` or ``scikit-learn`` itself). Works in
``Pipeline``, ``GridSearchCV``, ``RandomizedSearchCV`` and ``cross_val_score``; hyperparameter
names follow the library's own ``TwoLayerNet`` and ``train``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ._training import TrainOptions
from .net import TwoLayerNet


class MLPNumbaClassifier(ClassifierMixin, BaseEstimator):
    """A softmax network trained by the compiled kernels, with scikit-learn's API.

    Parameters
    ----------
    hidden_size : int, default 100
        The width of the one hidden layer, when ``hidden_layer_sizes`` is None.
    hidden_layer_sizes : sequence of int, optional
        The width of each hidden layer, as scikit-learn's ``MLPClassifier`` spells it: the net
        is then an :class:`mlp_numba.MLP` of that depth (``hidden_size`` is not used).
    activation : str, default "relu"
        One of :data:`mlp_numba.ACTIVATIONS`.
    learning_rate : float, default 1e-3
    learning_rate_decay : float, default 1.0
        Multiplies the learning rate after each epoch (the ``"step"`` schedule).
    reg : float, default 1e-4
        L2 strength: the loss gets ``reg`` times the sum of the squares of every weight.
    epochs : int, default 200
        Passes over the training data in ``fit`` (each of ``ceil(n / batch_size)`` minibatch
        steps, drawn with replacement as the course does).
    batch_size : int, default 200
        Capped at the number of samples.
    optimizer : str, default "adam"
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"`` or ``"adamw"``.
    schedule : str, default "step"
    std : float or None, default None
        Scale of the initial weights; None gives He's ``sqrt(2 / fan_in)`` (of the first
        layer's for a one-hidden-layer net, as before; of each layer's for a deeper one).
    dtype : {"float64", "float32"}, default "float64"
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training rows (a stratified draw from
        ``random_state`` when every class can be represented), stop when their accuracy has
        not improved for ``patience`` epochs, and keep the best params. On tiny data sets the
        held-out accuracy is coarse and training may stop early.
    validation_fraction : float, default 0.1
    patience : int, default 10
    warm_start : bool, default False
        ``fit`` continues from the current net and optimizer state when the data still fit.
    random_state : int, RandomState or None
        Seeds the initial weights, the minibatches and the validation draw.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, in the order of the columns of ``predict_proba``.
    net_ : TwoLayerNet or MLP
    n_iter_ : int
        Epochs run by ``fit`` (and ``partial_fit`` calls since).
    loss_curve_ : list of float
        The mean minibatch loss of each epoch.
    validation_scores_ : list of float
        The validation accuracy at the start of each epoch (the course's ``val_acc_history``):
        on the held-out rows with ``early_stopping``, else on the training rows.
    best_validation_score_ : float or None
        With ``early_stopping``: the best validation accuracy, whose params were kept.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlp_numba import MLPNumbaClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPNumbaClassifier(hidden_size=20, learning_rate=0.01, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        hidden_size=100,
        activation="relu",
        hidden_layer_sizes=None,
        learning_rate=1e-3,
        learning_rate_decay=1.0,
        reg=1e-4,
        epochs=200,
        batch_size=200,
        optimizer="adam",
        schedule="step",
        std=None,
        dtype="float64",
        early_stopping=False,
        validation_fraction=0.1,
        patience=10,
        warm_start=False,
        random_state=None,
    ):
        self.hidden_size = hidden_size
        self.activation = activation
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.reg = reg
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.schedule = schedule
        self.std = std
        self.dtype = dtype
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.warm_start = warm_start
        self.random_state = random_state

    def fit(self, X, y):
        """Train a new net on (X, y) for ``epochs`` epochs; returns self."""
        warm = self.warm_start and hasattr(self, "net_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=not warm)
        check_classification_targets(y)
        classes = unique_labels(y)
        if not (warm and np.array_equal(classes, self.classes_)):
            self.classes_ = classes
            self._new_net(X.shape[1])
            self.n_iter_, self.loss_curve_, self.validation_scores_ = 0, [], []
        return self._train(X, y, self.epochs, hold_out=self.early_stopping)

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing from the current net (and optimizer state).

        ``classes`` (all the labels that will ever be seen) is required on the first call.
        """
        first = not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            self.classes_ = unique_labels(classes)
            self._new_net(X.shape[1])
            self.n_iter_, self.loss_curve_, self.validation_scores_ = 0, [], []
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes {classes!r} differ from those of the first call")
        return self._train(X, y, 1)

    def _new_net(self, n_features):
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n_classes = max(len(self.classes_), 2)
        if self.hidden_layer_sizes is not None:
            from .mlp import MLP

            self.net_ = MLP(
                n_features, self.hidden_layer_sizes, n_classes, std=self.std,
                activation=self.activation, dtype=self.dtype, seed=seed,
            )  # fmt: skip
            return
        std = math.sqrt(2.0 / n_features) if self.std is None else self.std
        self.net_ = TwoLayerNet(
            n_features, self.hidden_size, n_classes, std=std, activation=self.activation,
            dtype=self.dtype, seed=seed,
        )  # fmt: skip

    def _train(self, X, y, epochs, hold_out=False):
        codes = np.searchsorted(self.classes_, y)
        codes[codes >= len(self.classes_)] = 0
        if np.any(self.classes_[codes] != y):
            raise ValueError(f"y has labels not in classes_ {self.classes_!r}")
        X_val, y_val, stopping = X, codes, None
        if hold_out:
            from sklearn.model_selection import train_test_split

            n_val = max(1, math.ceil(self.validation_fraction * len(X)))
            if n_val >= len(X):
                raise ValueError(
                    f"early_stopping needs training rows besides the {n_val} validation "
                    f"rows: n_samples={len(X)}, validation_fraction={self.validation_fraction}"
                )
            counts = np.bincount(codes)
            stratify = codes if n_val >= len(counts) and counts.min() >= 2 else None
            X, X_val, codes, y_val = train_test_split(
                X, codes, test_size=n_val, stratify=stratify,
                random_state=check_random_state(self.random_state).randint(2**31 - 1),
            )  # fmt: skip
            stopping = {"patience": self.patience}
        batch_size = min(self.batch_size, len(X))
        per_epoch = max(math.ceil(len(X) / batch_size), 1)
        options = TrainOptions(
            early_stopping=stopping, learning_rate=self.learning_rate,
            learning_rate_decay=self.learning_rate_decay, reg=self.reg,
            num_iters=epochs * per_epoch, batch_size=batch_size, optimizer=self.optimizer,
            schedule=self.schedule, iterations_per_epoch=per_epoch,
        )  # fmt: skip
        history = self.net_.train(X, codes, X_val, y_val, **options.as_kwargs())
        losses = np.asarray(history["loss_history"], dtype=np.float64)
        done = max(1, math.ceil(len(losses) / per_epoch))
        self.loss_curve_ += [float(chunk.mean()) for chunk in np.array_split(losses, done)]
        self.validation_scores_ += [float(a) for a in history["val_acc_history"]]
        self.best_validation_score_ = history.get("best_val_score")
        self.n_iter_ += done
        return self

    def _scores_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        X = self._scores_input(X)  # first: it checks that the estimator is fitted
        proba = self.net_.predict_proba(X)
        if len(self.classes_) == 1:  # the net has two outputs; the second is never a label
            return np.ones((len(proba), 1), proba.dtype)
        return proba

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def __setstate__(self, state):
        super().__setstate__(state)
        # Unpickled arrays may be read-only (joblib memory-maps large ones); training updates
        # the params and the optimizer's buffers in place.
        net = getattr(self, "net_", None)
        if net is not None:
            net.params = {k: np.array(p, order="C") for k, p in net.params.items()}
            if net.optimizer_state is not None:
                net.optimizer_state["buffers"] = [
                    {k: np.array(b, order="C") for k, b in buffers.items()}
                    for buffers in net.optimizer_state["buffers"]
                ]
