"""The kernels: serial code that the engine's entry point and its parallel region run.

By concern: ``common`` (constants, casts and block boundaries), ``blas`` (matrix products),
``activations``, ``layers`` (a block of rows through the net and back), ``reductions`` (sums,
largest magnitudes and finiteness) and ``updates`` (the optimizers). Each works on the rows,
columns or chunk it is given and allocates nothing.
"""
