"""Training, between the public nets and the compiled engine.

A net's ``train`` checks its data, puts its options in one :class:`TrainOptions` (``options``)
and hands :func:`run_training` (``loop``: the course's loop, written once for the compiled
nets and the reference) a :class:`Trainee`: a runner of blocks of optimizer steps (the
compiled engine's, or the reference's NumPy steps) and the net's scoring functions. The loop
draws the minibatches and plans the epochs (``plan``), and calls only downward: into the
runner and the functions it was handed, never into a net class. Pure Python and NumPy, so
the reference stays independent of the compiled engine.
"""

from .loop import MAX_BLOCK, StepRunner, Trainee, TrainingProgress, run_training
from .options import TrainOptions

__all__ = [
    "MAX_BLOCK",
    "StepRunner",
    "TrainOptions",
    "Trainee",
    "TrainingProgress",
    "run_training",
]
