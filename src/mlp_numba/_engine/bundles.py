"""The named bundles the compiled entry point takes: plain named tuples of arrays and numbers.

Numba compiles a named tuple like any tuple, its fields read by name. A net's params, its
gradients and each optimizer state are one packed vector each (W1, b1, W2, b2, ... in that
order, each C-ordered), and its per-layer buffers one vector per kind; the kernels find a
layer in them from the widths (``kernels.stack``). So each bundle has one type per dtype,
whatever the depth and widths, and the engine compiles once per dtype (``engine.Engine``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Model(NamedTuple):
    """The params of a net and its activation."""

    #: W1, b1, ..., WL, bL packed in one vector.
    params: np.ndarray
    #: The layer widths n0 (inputs), n1, ..., nL (classes), int64.
    widths: np.ndarray
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
    #: Its state vectors, packed like the params; empty when it keeps fewer than two.
    state1: np.ndarray
    state2: np.ndarray


class Steps(NamedTuple):
    """A block of training steps, and how the parallel region runs."""

    #: The minibatches' row numbers, one row per step.
    batches: np.ndarray
    #: Each step's learning rate, in the working dtype.
    rates: np.ndarray
    #: The L2 strength.
    reg: float
    #: The optimizer step number before the first of these steps (Adam's bias correction).
    step0: int
    #: The dropout hash's seed, and the threshold below which a unit is dropped
    #: (``p * 2**64``, 0 without dropout), both uint64; the kept outputs' factor 1 / (1 - p).
    drop_seed: np.uint64
    drop_threshold: np.uint64
    drop_scale: float
    #: True when the calling thread may use one Numba thread only: the parallel region then
    #: runs its blocks in a plain loop (``parallel``), which wakes no thread pool.
    serial: bool


class Workspace(NamedTuple):
    """Scratch buffers for passes over ``len(S)`` rows.

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
    #: The partial products of the minibatch and W1 cut along the inputs, all but the first
    #: block's (``kernels.stack.first_layer_splits``); empty when no step cuts them.
    Z_parts: np.ndarray


class Outputs(NamedTuple):
    """What a call returns in arrays: each step's loss, or the classes or probabilities."""

    losses: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray
