"""The named bundles the compiled entry point takes: plain named tuples of arrays and numbers.

Numba compiles a named tuple like any tuple, its fields read by name. Each bundle has one
type per dtype, which the engine compiles once (``_engine.Engine``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Params(NamedTuple):
    """The net's four parameters, or arrays shaped like them (gradients, optimizer state)."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray


class Model(NamedTuple):
    """What the net computes with: its params and its activation. (Flat: Numba's parallel
    regions take tuples of arrays, not tuples of tuples.)"""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    #: The activation's run-time code (``kernels.activations.activation_code``).
    activation: int
    #: The activation's parameters, a non-empty vector of the working dtype.
    activation_params: np.ndarray


class Optimizer(NamedTuple):
    """An optimizer as the updates take it (``kernels.updates``)."""

    #: Its code (``_optimizer_spec.OPTIMIZERS``).
    code: int
    #: Its float64 parameters (``_optimizer_spec.hyper_vector``).
    hyper: np.ndarray
    #: Its state, shaped like the params; empty arrays when it keeps fewer than two buffers.
    state1: Params
    state2: Params


class Steps(NamedTuple):
    """A block of training steps."""

    #: The minibatches' row numbers, one row per step.
    batches: np.ndarray
    #: Each step's learning rate, in the working dtype.
    rates: np.ndarray
    #: The L2 strength.
    reg: float
    #: The optimizer step number before the first of these steps (Adam's bias correction).
    step0: int


class Workspace(NamedTuple):
    """Scratch buffers for passes over ``len(Z)`` rows, allocated once and reused.

    ``Z_parts`` holds the partial products of a training step whose product X@W1 is cut along
    D (``kernels.layers.splits_columns``). ``block_W2``, ``block_sums`` and ``block_max`` hold
    each block of rows' share of the gradients and the loss, and its largest magnitude of dA
    (``kernels.layers.block_shares``); ``partial`` one value per block or chunk of other
    tasks; ``row_max`` one per row.
    """

    Z: np.ndarray
    A: np.ndarray
    dA: np.ndarray
    S: np.ndarray
    dS: np.ndarray
    row_loss: np.ndarray
    row_max: np.ndarray
    Z_parts: np.ndarray
    partial: np.ndarray
    block_W2: np.ndarray
    block_sums: np.ndarray
    block_max: np.ndarray
    #: The minibatch, copied from the training data, and its labels.
    Xb: np.ndarray
    yb: np.ndarray
    #: The gradients (``loss``'s result; in training, those of the last step but dW1's,
    #: which the fused updates do not write).
    dW1: np.ndarray
    db1: np.ndarray
    dW2: np.ndarray
    db2: np.ndarray


class Outputs(NamedTuple):
    """What a call returns in arrays: each step's loss, or the classes or probabilities."""

    losses: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray


# A net of any depth (``stack``): its params, gradients and optimizer state are each one
# packed vector (W1, b1, W2, b2, ... in that order, each C-ordered), and its per-layer buffers
# one vector per kind; the layers are found in them by their widths (``kernels.stack``). The
# types are therefore the same for every depth and width, and compile once per dtype.


class Stack(NamedTuple):
    """The params of a net of any depth and its activation."""

    #: W1, b1, ..., WL, bL packed in one vector.
    params: np.ndarray
    #: The layer widths n0 (inputs), n1, ..., nL (classes), int64.
    widths: np.ndarray
    activation: int
    activation_params: np.ndarray


class StackOptimizer(NamedTuple):
    """An optimizer of a :class:`Stack`: as :class:`Optimizer`, its state packed like the
    params (empty vectors when it keeps fewer than two buffers)."""

    code: int
    hyper: np.ndarray
    state1: np.ndarray
    state2: np.ndarray


class StackSteps(NamedTuple):
    """A block of training steps of a :class:`Stack`: :class:`Steps` and its dropout."""

    batches: np.ndarray
    rates: np.ndarray
    reg: float
    step0: int
    #: The dropout hash's seed, and the threshold below which a unit is dropped
    #: (``p * 2**64``, 0 without dropout), both uint64; the kept outputs' factor 1 / (1 - p).
    drop_seed: np.uint64
    drop_threshold: np.uint64
    drop_scale: float


class StackWorkspace(NamedTuple):
    """Scratch buffers of a :class:`Stack` for passes over ``len(S)`` rows.

    ``Z``, ``A`` and ``G`` hold each hidden layer's pre-activations, activations and the loss's
    gradient at its pre-activations, layer after layer, each a C-ordered (rows, width) block.
    ``block_max`` holds, per block of rows, the largest magnitude of each layer's input and of
    the gradient at its output, which bound the weight gradients (``entry``); ``partial`` one
    value per block of other tasks; ``row_max`` one per row.
    """

    Z: np.ndarray
    A: np.ndarray
    G: np.ndarray
    #: The hidden layers' dropout factors, and their outputs after dropout (training only).
    M: np.ndarray
    D: np.ndarray
    S: np.ndarray
    dS: np.ndarray
    row_loss: np.ndarray
    row_max: np.ndarray
    partial: np.ndarray
    block_max: np.ndarray
    #: The minibatch, copied from the training data, and its labels.
    Xb: np.ndarray
    yb: np.ndarray
    #: The gradients, packed like the params (``loss``'s result).
    grads: np.ndarray
