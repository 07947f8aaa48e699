"""A net of any depth: its layers found in packed vectors, and blocks of rows through them.

The params ``W1, b1, ..., WL, bL`` are one vector (``bundles.Model``), the gradients and the
optimizer's state vectors packed alike, and each kind of per-layer buffer (pre-activations,
activations, gradients) one vector of C-ordered (rows, width) blocks. :func:`weight`,
:func:`bias` and :func:`hidden` find a layer in them from the widths, so that one compiled
code serves every depth and width.

A block of rows goes forward through every layer and back to the gradient at the first
layer's pre-activations on one thread, in cache (:func:`first_layer_rows`, :func:`upper_rows`,
:func:`backward_rows`),
its products one-thread BLAS calls, as the two-layer net's (``layers``). The weight gradients
sum over all rows, so a second task cuts each layer's weights into blocks of rows
(:func:`weight_block`) and updates each block right after its gradient.

Dropout (training only) multiplies each hidden unit's output by ``scale = 1 / (1 - p)`` or 0,
kept or dropped by a hash of the dropout seed, the optimizer step, the layer and the unit's
place in the minibatch (:func:`dropout_mask_value`): the same bits whatever thread computes
it, and the reference computes the same masks in NumPy. The factors go to ``work.M`` (read
again going back) and the dropped outputs to ``work.D``, which the layer above and the weight
gradients read; ``work.A`` keeps the activations, which the derivatives of some activations
(tanh, sigmoid) read.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._jit import kernel, view
from .activations import activate_rows, activation_grad_rows
from .blas import gemm, gemm_accumulate
from .common import (
    cast,
    chunk_bounds,
    fill_view,
    magnitude_bits,
    max_magnitude_bits,
    readonly,
    sum_chunk,
)
from .layers import (
    GRADIENT,
    GRADIENT_OF_INPUT,
    SGD_BY_PRODUCT,
    UPDATE,
    add_bias_rows,
    column_sums,
    copy_row,
    dense_backward_rows,
    dense_rows,
)
from .reductions import flat
from .updates import state_slice, update_slice


@kernel
def param_start(widths, layer):
    """Where ``W{layer}`` starts in the packed params (layers count from 1); its bias follows
    it."""
    start = 0
    for k in range(1, layer):
        start += widths[k - 1] * widths[k] + widths[k]
    return start


def _offsets(context, builder, widths_type, widths, layer):
    """LLVM values: where ``W{layer}`` starts in the packed params, how many hidden units the
    layers below ``layer`` have, and the widths' array struct (a loop over those layers)."""
    intp = context.get_value_type(types.intp)
    w = make_array(widths_type)(context, builder, value=widths)
    zero, one = ir.Constant(intp, 0), ir.Constant(intp, 1)
    param, units = (
        cgutils.alloca_once_value(builder, zero),
        cgutils.alloca_once_value(builder, zero),
    )
    with cgutils.for_range(builder, builder.sub(layer, one)) as loop:
        k = builder.add(loop.index, one)
        below = _width(context, builder, widths_type, w, builder.sub(k, one))
        width = _width(context, builder, widths_type, w, k)
        size = builder.add(builder.mul(below, width), width)
        builder.store(builder.add(builder.load(param), size), param)
        builder.store(builder.add(builder.load(units), width), units)
    return builder.load(param), builder.load(units), w


def _width(context, builder, widths_type, w, index):
    pointer = cgutils.get_item_pointer(context, builder, widths_type, w, [index])
    return context.cast(builder, builder.load(pointer), widths_type.dtype, types.intp)


def _layer_view(kind):
    """An intrinsic for ``kind`` of a layer in a packed vector (see :func:`weight`): each call
    site emits a short loop and a view, where a helper inlined as Numba IR would be copied and
    typed anew at each of the many call sites."""

    def typer(typingctx, vector, widths, layer, rows=None):
        if not (isinstance(vector, types.Array) and vector.ndim == 1 and vector.layout == "C"):
            return None
        result = vector.copy(ndim=1 if kind == "bias" else 2)

        def codegen(context, builder, signature, arguments):
            layer_value = context.cast(builder, arguments[2], signature.args[2], types.intp)
            start, units, w = _offsets(context, builder, widths, arguments[1], layer_value)
            source = make_array(vector)(context, builder, value=arguments[0])
            cols = _width(context, builder, widths, w, layer_value)
            if kind == "hidden":
                rows_value = context.cast(builder, arguments[3], signature.args[3], types.intp)
                start, shape = builder.mul(units, rows_value), [rows_value, cols]
            else:
                below = _width(
                    context,
                    builder,
                    widths,
                    w,
                    builder.sub(layer_value, ir.Constant(layer_value.type, 1)),
                )
                if kind == "bias":
                    start, shape = builder.add(start, builder.mul(below, cols)), [cols]
                else:
                    shape = [below, cols]
            itemsize = source.itemsize
            strides = [itemsize] if kind == "bias" else [builder.mul(cols, itemsize), itemsize]
            view = make_array(result)(context, builder)
            fill_view(
                context, builder, view, source, builder.gep(source.data, [start]), shape, strides
            )
            return impl_ret_borrowed(context, builder, result, view._getvalue())

        arguments = (vector, widths, layer) if rows is None else (vector, widths, layer, rows)
        return result(*arguments), codegen

    return typer


@intrinsic
def weight(typingctx, vector, widths, layer):
    """``W{layer}`` in the packed ``vector`` (the params, the gradients or a state): a C-ordered
    (widths[layer - 1], widths[layer]) view."""
    return _layer_view("weight")(typingctx, vector, widths, layer)


@intrinsic
def bias(typingctx, vector, widths, layer):
    """``b{layer}`` in the packed ``vector``."""
    return _layer_view("bias")(typingctx, vector, widths, layer)


@intrinsic
def hidden(typingctx, buffer, widths, layer, rows):
    """Hidden layer ``layer``'s (rows, width) block of a packed buffer (``work.Z``, ``A``,
    ``G``)."""
    return _layer_view("hidden")(typingctx, buffer, widths, layer, rows)


@view
def layer_gradient(work, widths, layer):
    """The loss's gradient at ``layer``'s output before its activation: dS at the top."""
    rows = work.S.shape[0]
    return work.dS if layer == widths.shape[0] - 1 else hidden(work.G, widths, layer, rows)


# The dropout hash: SplitMix64's increment and finaliser (Steele, Lea and Flood 2014).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@kernel
def dropout_mask_value(task, layer, index, scale):
    """The dropout factor, ``scale`` or 0, of hidden layer ``layer``'s output ``index``
    (row * width + unit, the row counted in the minibatch) at optimizer step ``task.step``:
    kept when the hash of ``(task.drop_seed, step, layer, index)`` is at least
    ``task.drop_threshold`` (``p * 2**64``). The reference's ``dropout_masks`` is the same."""
    x = task.drop_seed + np.uint64(task.step) * _GOLDEN + np.uint64(layer) * _MIX1
    x += np.uint64(index)
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    x = x ^ (x >> np.uint64(31))
    return scale if x >= task.drop_threshold else scale - scale


@kernel
def dropout_rows(lo, hi, task, layer, A, M, D):
    """Rows lo:hi of hidden layer ``layer``: its dropout factors into M, and its outputs as
    the layer above sees them, D = A * M."""
    width = A.shape[1]
    scale = cast(A, task.drop_scale)
    a, m, d = flat(A), flat(M), flat(D)
    for k in range(lo * width, hi * width):
        m[k] = dropout_mask_value(task, layer, k, scale)
        d[k] = a[k] * m[k]


@kernel
def scale_rows(lo, hi, M, G):
    """G[lo:hi] *= M[lo:hi]: the dropout factors on the way back."""
    width = G.shape[1]
    m, g = flat(M), flat(G)
    for k in range(lo * width, hi * width):
        g[k] = g[k] * m[k]


@view
def outputs_seen(work, widths, layer, rows, dropping):
    """Hidden layer ``layer``'s outputs as the layer above reads them: with dropout applied
    (``work.D``) when ``dropping``, else its activations."""
    return hidden(work.D if dropping else work.A, widths, layer, rows)


@kernel
def first_layer_rows(lo, hi, inputs, model, work):
    """Rows lo:hi of ``inputs`` times W1 plus b1: the first hidden layer's pre-activations in
    ``work.Z``, or the scores when there is no hidden layer above. (Apart from the rest of
    the pass, which is then compiled once whatever the type of ``inputs``.)"""
    widths, params, first = model.widths, model.params, np.int64(1)
    W, b = weight(params, widths, first), bias(params, widths, first)
    rows = work.S.shape[0]
    out = work.S if widths.shape[0] == 2 else hidden(work.Z, widths, first, rows)
    dense_rows(lo, hi, inputs, W, b, out)


#: Bytes of W1 above which a training step cuts the minibatch's product with W1 along the
#: inputs (:func:`first_layer_splits`).
COLUMN_SPLIT_BYTES = 1 << 17


@kernel
def first_layer_splits(model, work, pieces):
    """Whether a training step cuts the product of its minibatch and W1 along the inputs, into
    ``pieces`` blocks, rather than along the batch.

    Cut along the inputs, each thread copies its columns of the minibatch and multiplies them
    by its own rows of W1 (:func:`gather_columns_block`), the rows whose gradient and update
    the same thread computes (:func:`weight_block`): its share of W1 stays in its core's
    cache, where cut along the batch every thread reads all of W1. The partial products cost
    one sum per block, and for a small W1 the cut products are too small to gain.
    """
    widths = model.widths
    size = widths[0] * widths[1] * model.params.itemsize
    return (
        widths.shape[0] > 2 and pieces > 1 and size > COLUMN_SPLIT_BYTES
        and work.Z_parts.shape[0] >= pieces - 1
    )  # fmt: skip


@kernel
def gather_columns_block(lo, hi, p, X, idx, model, work):
    """Columns lo:hi of the minibatch X[idx] copied into ``work.Xb`` and multiplied by W1's
    rows lo:hi: into the first layer's pre-activations for block 0, into
    ``work.Z_parts[p - 1]`` for the others. Returns the largest ``magnitude_bits`` copied."""
    widths, Xb, first = model.widths, work.Xb, np.int64(1)
    _, mask = magnitude_bits(Xb[0, :0])
    largest = mask ^ mask
    for i in range(idx.shape[0]):
        largest = max(largest, copy_row(X[idx[i], lo:hi], Xb[i, lo:hi]))
    W = weight(model.params, widths, first)
    Z = hidden(work.Z, widths, first, work.S.shape[0])
    gemm(False, False, Xb[:, lo:hi], W[lo:hi], Z if p == 0 else work.Z_parts[p - 1])
    return largest


@kernel
def add_parts_rows(lo, hi, n_parts, model, work):
    """Rows lo:hi of the first layer's pre-activations: the partial products added in block
    order, then b1."""
    widths, first = model.widths, np.int64(1)
    Z = hidden(work.Z, widths, first, work.S.shape[0])
    parts = work.Z_parts
    for q in range(n_parts):
        for i in range(lo, hi):
            for j in range(Z.shape[1]):
                Z[i, j] += parts[q, i, j]
    add_bias_rows(lo, hi, bias(model.params, widths, first), Z)


@kernel
def upper_rows(lo, hi, task, model, work):
    """Rows lo:hi from the first layer's pre-activations (``first_layer_rows``) through every
    layer to their scores in ``work.S``; the hidden layers' pre-activations, activations and
    (when ``task`` drops units) dropped outputs stay in ``work.Z``, ``work.A`` and
    ``work.D``."""
    widths, params = model.widths, model.params
    code, p = model.activation, model.activation_params
    top, rows = widths.shape[0] - 1, work.S.shape[0]
    dropping = task.drop_threshold > 0
    for layer in range(1, top + 1):
        if layer > 1:
            below = outputs_seen(work, widths, layer - 1, rows, dropping)
            W, b = weight(params, widths, layer), bias(params, widths, layer)
            out = work.S if layer == top else hidden(work.Z, widths, layer, rows)
            # Read-only, as the first layer's input: one compiled dense_rows for both.
            dense_rows(lo, hi, readonly(below), W, b, out)
        if layer < top:
            Z, A = hidden(work.Z, widths, layer, rows), hidden(work.A, widths, layer, rows)
            activate_rows(code, Z, A, p, lo, hi)
            if dropping:
                M, D = hidden(work.M, widths, layer, rows), hidden(work.D, widths, layer, rows)
                dropout_rows(lo, hi, task, layer, A, M, D)


@kernel
def first_layer_bits(lo, hi, model, work):
    """Each row's largest ``magnitude_bits`` of the first layer's output before its
    activation, into ``work.row_max``: a NaN or inf in a row of the input shows there."""
    widths = model.widths
    rows, one = work.S.shape[0], np.int64(1)
    first = work.S if widths.shape[0] == 2 else hidden(work.Z, widths, one, rows)
    row_bits, _ = magnitude_bits(work.row_max)
    for i in range(lo, hi):
        row_bits[i] = max_magnitude_bits(readonly(first[i]))


@kernel
def backward_rows(lo, hi, task, model, work):
    """Rows lo:hi, whose scores' gradient is in ``work.dS``, back to the gradient at every
    hidden layer's pre-activations in ``work.G`` (through the dropout factors of ``task``)."""
    widths, params = model.widths, model.params
    code, p = model.activation, model.activation_params
    top, rows = widths.shape[0] - 1, work.S.shape[0]
    for layer in range(top - 1, 0, -1):
        G = hidden(work.G, widths, layer, rows)
        above = layer_gradient(work, widths, layer + 1)
        dense_backward_rows(lo, hi, above, weight(params, widths, layer + 1), G)
        if task.drop_threshold > 0:
            scale_rows(lo, hi, hidden(work.M, widths, layer, rows), G)
        Z, A = hidden(work.Z, widths, layer, rows), hidden(work.A, widths, layer, rows)
        activation_grad_rows(code, Z, A, G, p, lo, hi)


@kernel
def record_magnitudes(lo, hi, p, input_bits, task, model, work):
    """Block ``p``'s row ``work.block_max[p]``: for each layer, the largest ``magnitude_bits``
    of its input's rows lo:hi (``input_bits`` for the first layer) and of the gradient at its
    output, which bound that layer's weight gradient."""
    widths = model.widths
    top, rows = widths.shape[0] - 1, work.S.shape[0]
    bits, _ = magnitude_bits(work.block_max[p])
    bits[0] = input_bits
    for layer in range(1, top + 1):
        if layer > 1:
            A = outputs_seen(work, widths, layer - 1, rows, task.drop_threshold > 0)
            a = flat(A)[lo * A.shape[1] : hi * A.shape[1]]
            bits[2 * layer - 2] = max_magnitude_bits(readonly(a))
        G = layer_gradient(work, widths, layer)
        g = flat(G)[lo * G.shape[1] : hi * G.shape[1]]
        bits[2 * layer - 1] = max_magnitude_bits(readonly(g))


@kernel
def weight_rows(lo, hi, task, inputs, G, W, dW, start):
    """Rows lo:hi of a layer's weight gradient ``dW = inputs.T @ G`` and, by ``task.mode``
    (``layers.GRADIENT`` ...), its L2 term or the update of W's rows lo:hi; ``start`` is
    where W starts in the packed params (and states). Returns the sum of the squares of W's
    new rows (0 without an update)."""
    mode, width = task.mode, W.shape[1]
    lr, reg = cast(W, task.lr), cast(W, task.reg)
    a, b = lo * width, hi * width
    if mode == GRADIENT or mode == GRADIENT_OF_INPUT:
        gemm(True, False, inputs[:, lo:hi], G, dW[lo:hi])
        if mode == GRADIENT_OF_INPUT:
            w, g, decay = flat(W), flat(dW), cast(W, 2) * reg
            for k in range(a, b):
                g[k] += decay * w[k]
        return cast(W, 0)
    if mode == SGD_BY_PRODUCT:
        beta = cast(W, 1) - lr * (cast(W, 2) * reg)
        gemm_accumulate(True, False, inputs[:, lo:hi], G, W[lo:hi], -lr, beta)
        return sum_chunk(flat(W)[a:b], True)
    if mode != UPDATE:
        gemm(True, False, inputs[:, lo:hi], G, dW[lo:hi])
    return update_slice(
        task.code, flat(W)[a:b], flat(dW)[a:b],
        state_slice(task.state1, start + a, start + b),
        state_slice(task.state2, start + a, start + b),
        lr, reg, task.hyper, task.step,
    )  # fmt: skip


@kernel
def bias_gradient(task, G, b, db, start):
    """db = the column sums of G (kept by ``layers.UPDATE``) and, unless ``task.mode`` only
    asks for gradients, b's update (no L2 term); ``start`` is where b starts in the packed
    params."""
    mode = task.mode
    if mode != UPDATE:
        column_sums(G, db)
    if mode == GRADIENT or mode == GRADIENT_OF_INPUT:
        return
    lr = cast(b, task.lr)
    end = start + b.shape[0]
    update_slice(
        task.code, b, db, state_slice(task.state1, start, end),
        state_slice(task.state2, start, end), lr, lr - lr, task.hyper, task.step,
    )  # fmt: skip


@kernel
def weight_block(p, task, X, model, work):
    """Block ``p`` of the weight gradients of every layer: block ``p // L`` of the rows of
    layer ``p % L + 1`` (the first layer's input is X for ``loss``, ``GRADIENT_OF_INPUT``,
    else the minibatch ``work.Xb``), and that layer's bias when the block falls to it.
    Block-major, so that the threads' contiguous shares of the blocks hold equal shares of
    every layer. ``work.partial[p]`` gets the sum of the squares of the new rows."""
    widths, params, grads = model.widths, model.params, work.grads
    top = widths.shape[0] - 1
    chunks = task.pieces // top
    c, layer = p // top, p % top + 1
    lo, hi = chunk_bounds(c, widths[layer - 1], chunks)
    G = layer_gradient(work, widths, layer)
    W, dW = weight(params, widths, layer), weight(grads, widths, layer)
    start = param_start(widths, layer)
    if layer == 1:
        inputs = X if task.mode == GRADIENT_OF_INPUT else readonly(work.Xb)
    else:
        rows, dropping = work.S.shape[0], task.drop_threshold > 0
        inputs = readonly(outputs_seen(work, widths, layer - 1, rows, dropping))
    # One call for every input: LLVM inlines a kernel at each call site.
    work.partial[p] = weight_rows(lo, hi, task, inputs, G, W, dW, start)
    if c == (layer - 1) % chunks:
        b, db = bias(params, widths, layer), bias(grads, widths, layer)
        bias_gradient(task, G, b, db, start + W.size)
