"""Dropout's masks: which hidden units a training step drops, as the reference computes them.

Unit ``j`` of row ``i`` (its place in the minibatch) of hidden layer ``l`` (1, 2, ...) at
optimizer step ``s`` is kept when SplitMix64's finaliser of ``seed + s * GOLDEN + l * MIX1 +
(i * width + j)`` (mod 2**64) is at least ``threshold(p)``; a kept output is multiplied by
``1 / (1 - p)`` (inverted dropout), so that nothing changes at prediction. A counter-based hash
rather than a random stream: the compiled blocks compute the same bits whatever thread runs
them (``_engine.kernels.stack.dropout_mask_value``, which must keep these constants).
"""

from __future__ import annotations

import numpy as np

GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_WORD = 2**64


def threshold(p):
    """The hash value below which a unit is dropped with probability ``p`` (0 <= p < 1)."""
    return min(int(p * 2.0**64), _WORD - 1)


def masks(seed, step, widths, rows, p, dtype):
    """The factors (``1 / (1 - p)`` or 0, of ``dtype``) of every hidden layer's outputs at
    optimizer ``step``: one (rows, width) array per hidden layer of the layer widths
    ``widths`` = (inputs, hidden..., classes)."""
    scale = np.dtype(dtype).type(1.0 / (1.0 - p))
    limit = np.uint64(threshold(p))
    factors = []
    for layer, width in enumerate(widths[1:-1], start=1):
        start = (seed + step * GOLDEN + layer * MIX1) % _WORD
        x = np.uint64(start) + np.arange(rows * width, dtype=np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(MIX1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(MIX2)
        x = x ^ (x >> np.uint64(31))
        factors.append(np.where(x >= limit, scale, scale - scale).reshape(rows, width))
    return factors
