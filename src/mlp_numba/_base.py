"""What the compiled net and the reference share: construction, ``train``, saving and loading.

Pure Python and NumPy, so that the reference stays independent of the compiled engine. A net
provides its own numbers: ``loss``, ``predict``, ``predict_proba`` and the optimizer steps of
``train`` (``_step_runner``, see ``_training``).
"""

from __future__ import annotations

import numpy as np

from . import _model_io
from . import _validation as v
from ._activation_spec import resolve_activation
from ._optimizer_spec import OPTIMIZERS
from ._params import ParamDict
from ._training import Trainee, TrainOptions, run_training


class NetBase:
    """Validates the constructor's arguments and draws the course's initial params."""

    #: Whether the class takes any number of hidden layers (model files check it).
    _ANY_DEPTH = False

    def __init__(
        self,
        input_size,
        hidden_size,
        output_size,
        std=1e-4,
        *,
        activation="relu",
        activation_params=None,
        dtype=np.float64,
        seed=None,
    ):
        std = v.check_float("std", std, minimum=0.0)
        self._set_architecture(
            (input_size, hidden_size, output_size),
            activation,
            activation_params,
            dtype,
            v.check_seed(seed),
        )
        self.params = v.init_params(self.sizes, std, self.dtype, self._rng)

    def _set_architecture(self, sizes, activation, activation_params, dtype, rng):
        self._set_sizes(sizes)
        self.dtype = v.check_dtype(dtype)
        self.activation, self.activation_params = resolve_activation(activation, activation_params)
        self._rng = rng
        #: The optimizer's name, parameters, step count and buffers, kept between ``train``
        #: calls (and in model files) so that training resumes where it stopped.
        self.optimizer_state = None

    @property
    def params(self):
        """The params by name (``W1``, ``b1``, ...): each a view of one packed vector, the
        one the compiled engine reads and writes. Assigning an array, or a whole dict, copies
        it in (``_params.ParamDict``)."""
        return self._params

    @params.setter
    def params(self, values):
        if getattr(self, "_params", None) is None:
            self._params = ParamDict(v.param_shapes(self.sizes), self.dtype)
        if values is not self._params:
            self._params.assign(values)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_params"] = self._params.copy()
        return state

    def __setstate__(self, state):
        params = state.pop("_params")
        self.__dict__.update(state)
        self._params = None
        self.params = params

    #: The constructor argument that holds the hidden width(s), as ``repr`` shows it.
    _HIDDEN_REPR = "hidden_size"

    def __repr__(self):
        extra = "".join(f", {k}={val!r}" for k, val in self.activation_params.items())
        return (
            f"{type(self).__name__}(input_size={self.input_size}, "
            f"{self._HIDDEN_REPR}={getattr(self, self._HIDDEN_REPR)}, "
            f"output_size={self.output_size}, activation={self.activation!r}{extra}, "
            f"dtype={self.dtype.name})"
        )

    def _set_sizes(self, sizes):
        """Check and keep the layer widths (input, hidden, classes)."""
        if len(sizes) != 3:
            raise ValueError(
                f"a {type(self).__name__} has one hidden layer, got layer widths {list(sizes)}"
            )
        self.sizes = v.check_sizes(*sizes)
        self.input_size, self.hidden_size, self.output_size = self.sizes

    def _optimizer_state_for(self, name, values):
        """The optimizer state for a ``train`` call: the kept one if it fits, else a new one."""
        state = self.optimizer_state
        fits = (
            isinstance(state, dict)
            and state.get("name") == name
            and len(state.get("buffers", ())) == OPTIMIZERS[name][2]
            and all(
                set(buffers) == set(self.params)
                and all(
                    isinstance(b, np.ndarray)
                    and b.shape == self.params[k].shape
                    and b.dtype == self.dtype
                    and b.flags.c_contiguous
                    for k, b in buffers.items()
                )
                for buffers in state["buffers"]
            )
        )
        if not fits:
            count = OPTIMIZERS[name][2]
            buffers = [{k: np.zeros_like(p) for k, p in self.params.items()} for _ in range(count)]
            state = {"name": name, "step": 0, "buffers": buffers}
        state["params"] = dict(values)
        self.optimizer_state = state
        return state

    def train(
        self,
        X,
        y,
        X_val,
        y_val,
        learning_rate=1e-3,
        learning_rate_decay=0.95,
        reg=5e-6,
        num_iters=100,
        batch_size=200,
        verbose=False,
        *,
        optimizer="sgd",
        optimizer_params=None,
        schedule="step",
        schedule_params=None,
        sampling="replacement",
        early_stopping=None,
        iterations_per_epoch=None,
        callback=None,
        progress=False,
        dropout=0.0,
    ):
        """Train with minibatch SGD, exactly as the course's ``train``.

        Each iteration samples ``batch_size`` rows with replacement (``np.random.choice`` on the
        global random state, or the net's Generator when it was given a seed), takes a plain
        SGD step on their loss, and records the loss. At ``it % iterations_per_epoch == 0``
        (it = 0 included) it records the accuracy on that minibatch and on all of X_val, then
        multiplies the learning rate by ``learning_rate_decay``.

        Parameters
        ----------
        X, y : array_like
            Training data (N, D) and labels (N,).
        X_val, y_val : array_like
            Validation data and labels.
        learning_rate : float, default 1e-3
        learning_rate_decay : float, default 0.95
            Applied once per epoch.
        reg : float, default 5e-6
        num_iters : int, default 100
        batch_size : int, default 200
        verbose : bool, default False
            Print ``iteration %d / %d: loss %f`` every 100 iterations.
        optimizer : str, default "sgd"
            ``"sgd"`` (the course's ``p -= learning_rate * grad``), ``"momentum"``,
            ``"nesterov"`` (CS231n's form), ``"adam"`` or ``"adamw"`` (Adam with decoupled
            weight decay). Its state (velocities, moments, step count) is kept in
            ``self.optimizer_state`` between calls and in model files, so training resumes.
        optimizer_params : dict, optional
            ``{"momentum": 0.9}``; for Adam ``{"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}``,
            plus ``"weight_decay": 0.01`` for AdamW.
        schedule : str, default "step"
            ``"step"`` (the course's: multiply by ``learning_rate_decay`` at each epoch end),
            ``"constant"``, ``"invscaling"`` (``learning_rate / (it + 1) ** power_t``) or
            ``"cosine"`` (from ``learning_rate`` to ``min_lr`` over ``num_iters``).
        schedule_params : dict, optional
            ``{"power_t": 0.5}`` for invscaling, ``{"min_lr": 0.0}`` for cosine.
        sampling : {"replacement", "permutation"}, default "replacement"
            Minibatches drawn with replacement (the course's), or through a fresh permutation
            of the training rows each epoch.
        early_stopping : None, True or dict, optional
            Stop when the validation score has not improved for ``patience`` epoch ends and
            put back the best params: True, or a dict of ``patience`` (10), ``monitor``
            (``"val_acc"`` or ``"val_loss"``) and ``min_delta`` (0.0). The history then
            also has ``best_iteration``, ``best_val_score`` and ``stopped_early``.
        iterations_per_epoch : int, optional
            The length of an epoch in iterations. Default: the course's
            ``max(num_train / batch_size, 1)``, a float, so that when it is not a whole number
            ``it % iterations_per_epoch == 0`` holds only at it = 0 and the learning rate
            decays once. An integer gives an epoch end (accuracies, decay) every that many
            iterations. Not part of the course's API.
        callback : callable, optional
            Called as ``callback(progress)`` with a :class:`TrainingProgress` several times a
            second (between compiled blocks of iterations); returning ``False`` stops
            training there, with the params and histories of the iterations done. Not part
            of the course's API; results do not depend on it.
        progress : bool, default False
            Show a progress bar with the loss and the last validation accuracy (tqdm: a
            widget in a notebook, a line in a terminal or a log; ``pip install tqdm``). Not
            part of the course's API; results do not depend on it.
        dropout : float, default 0.0
            ``MLP`` only: the probability of dropping each hidden unit's output in a training
            step (inverted dropout: the kept outputs are scaled by ``1 / (1 - dropout)``, so
            ``predict`` and ``loss`` use the whole net unchanged). The units dropped are a
            hash of a seed drawn from the net's random state, the step, the layer and the
            unit: the same whatever the threads, and the same in the reference. Not part of
            the course's API.

        Returns
        -------
        dict
            ``loss_history`` (one loss per iteration), ``train_acc_history`` and
            ``val_acc_history`` (one accuracy per epoch).

        Raises
        ------
        TrainingDivergedError
            When an iteration's loss or gradient is not finite; the params keep their values
            from before it, and the error carries the iteration and the histories so far.
            (The minibatch indices of the current block were already drawn.)

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
        >>> net = TwoLayerNet(4, 10, 3, std=1e-1, seed=0)
        >>> stats = net.train(X, y, X, y, learning_rate=0.1, num_iters=20, batch_size=10)
        >>> len(stats["loss_history"]), len(stats["val_acc_history"])
        (20, 4)
        """
        options = TrainOptions.from_arguments(locals())
        X, y, X_val, y_val = self._check_train_data(X, y, X_val, y_val)
        options = options.checked()
        state = self._optimizer_state_for(options.optimizer, options.optimizer_params)
        runner = self._step_runner(
            X, y, options.reg, options.batch_size, state, self._dropout_seed(options.dropout)
        )
        trainee = Trainee(
            runner, self.predict, self.predict_proba, self.params, self._rng, self.dtype
        )
        return run_training(trainee, len(X), X_val, y_val, options, state)

    def _dropout_seed(self, dropout):
        """``None`` without dropout, else ``(seed, p)``: a hash seed drawn from the net's random
        state (none is drawn without dropout, so that those runs keep the course's numbers)."""
        if dropout == 0.0:
            return None
        if not self._ANY_DEPTH:
            raise ValueError(
                f"dropout: a {type(self).__name__} trains as the course's net, without dropout; "
                "use mlp_numba.MLP (one hidden layer or more) to drop units"
            )
        rng = self._rng
        bits = rng.integers(2**63) if rng is not None else np.random.randint(2**63 - 1)
        return int(bits), dropout

    @classmethod
    def _restore(cls, sizes, activation, activation_params, dtype, params, rng):
        """A net with the given params, built without drawing from any random state."""
        net = cls.__new__(cls)
        net._set_architecture(sizes, activation, activation_params, dtype, rng)
        v.check_params(params, net.sizes, net.dtype)
        net.params = params
        return net

    def save(self, path, *, metadata=None, arrays=None):
        """Write the net to an ``.npz`` model file, atomically; return the path written.

        The file holds the params, the architecture, the dtype and the state of the net's
        random Generator, plus any JSON ``metadata`` and numeric ``arrays`` given; see
        :mod:`mlp_numba.model_file`. Loading gives bitwise the same params.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from mlp_numba import TwoLayerNet
        >>> net = TwoLayerNet(4, 3, 2, activation="tanh", seed=0)
        >>> path = net.save(pathlib.Path(tempfile.mkdtemp()) / "model.npz")
        >>> TwoLayerNet.load(path)
        TwoLayerNet(input_size=4, hidden_size=3, output_size=2, activation='tanh', dtype=float64)
        """
        return _model_io.write_record(path, self._to_record(metadata, arrays))

    @classmethod
    def load(cls, path):
        """Read a net written by :meth:`save` (no pickle); raises ModelFileError if damaged."""
        return cls._from_record(_model_io.read_record(path), path)

    def _to_record(self, metadata=None, arrays=None):
        """This net as a model file's record (``_model_io.ModelRecord``)."""
        state = self.optimizer_state
        optimizer = None if state is None else {k: state[k] for k in ("name", "params", "step")}
        if optimizer is not None:
            optimizer["buffers"] = state["buffers"]
        return _model_io.ModelRecord(
            class_name=type(self).__name__, sizes=self.sizes, activation=self.activation,
            activation_params=self.activation_params, dtype=self.dtype,
            params=dict(self.params), random_state=_model_io.rng_state(self._rng),
            optimizer=optimizer, metadata={} if metadata is None else metadata,
            arrays={} if arrays is None else arrays,
        )  # fmt: skip

    @classmethod
    def _from_record(cls, record, path):
        """A net of this class from the record read from the model file ``path``."""
        if len(record.sizes) != 3 and not cls._ANY_DEPTH:
            raise _model_io.ModelFileError(
                f"{path} holds a net with {len(record.sizes) - 2} hidden layers; a "
                f"{cls.__name__} has one: read it with mlp_numba.MLP"
            )
        with _model_io.damaged_if_invalid(path):
            net = cls._restore(
                record.sizes, record.activation, record.activation_params, record.dtype,
                record.params, _model_io.rng_from_state(record.random_state),
            )  # fmt: skip
        net.optimizer_state = record.optimizer
        return net

    def _check_features(self, name, X):
        """``X`` checked and converted to the net's dtype (``_validation.check_features``)."""
        return v.check_features(name, X, self.input_size, self.dtype)

    def _check_train_data(self, X, y, X_val, y_val):
        """The training and validation arrays, checked and converted to the net's dtype."""
        X = self._check_features("X", X)
        y = v.check_labels("y", y, len(X), self.output_size)
        X_val = self._check_features("X_val", X_val)
        y_val = v.check_labels("y_val", y_val, len(X_val), self.output_size, "X_val")
        return X, y, X_val, y_val


class DeepNetBase(NetBase):
    """A net with any number of hidden layers: the constructor of ``MLP``, compiled and
    reference alike."""

    _ANY_DEPTH = True

    def __init__(
        self,
        input_size,
        hidden_sizes,
        output_size,
        std=None,
        *,
        activation="relu",
        activation_params=None,
        init="he",
        dtype=np.float64,
        seed=None,
    ):
        input_size = v.check_int("input_size", input_size, minimum=1)
        hidden_sizes = v.check_hidden_sizes(hidden_sizes)
        output_size = v.check_int("output_size", output_size, minimum=2)
        init = v.check_init(init)
        if std is not None:
            std = v.check_float("std", std, minimum=0.0)
        self._set_architecture(
            (input_size, *hidden_sizes, output_size),
            activation,
            activation_params,
            dtype,
            v.check_seed(seed),
        )
        rule = init if std is None else None
        self.params = v.init_params(self.sizes, std, self.dtype, self._rng, rule)

    def _set_sizes(self, sizes):
        if len(sizes) < 3:
            raise ValueError(f"an MLP has at least one hidden layer, got layer widths {sizes}")
        input_size, *hidden, output_size = sizes
        self.input_size = v.check_int("input_size", input_size, minimum=1)
        self.hidden_sizes = v.check_hidden_sizes(hidden)
        self.output_size = v.check_int("output_size", output_size, minimum=2)
        self.sizes = (self.input_size, *self.hidden_sizes, self.output_size)

    _HIDDEN_REPR = "hidden_sizes"
