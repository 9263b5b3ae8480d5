"""The square's 8 symmetries on batches of fields (B, H, W, C) of a periodic grid, in TensorFlow.

An element of the group is a subset of three steps, applied in order: :func:`transpose` (bit 1),
:func:`reflect_rows` (bit 2), :func:`reflect_columns` (bit 4). The reflections are those of a periodic grid about
point 0 (``i -> -i mod n``): point 0 stays, points k and n - k swap. A field whose boundary lies at point 0 and
whose opposite boundary is the grid's next, unstored point (neuraloperator's Darcy grids, and the periodic field
an FFT assumes) maps onto itself exactly, where a plain flip would move the boundary by one point.

Used by the training augmentation (``training.augment=dihedral``) and the symmetric FNO's inference average.
TensorFlow is imported inside the functions, like everywhere in the zoo. Named functions, not lambdas: AutoGraph
cannot read several lambdas on one line (it warned in every rank).
"""
from __future__ import annotations

ELEMENTS = 8


def transpose(fields):
    import tensorflow as tf

    return tf.transpose(fields, [0, 2, 1, 3])


def reflect_rows(fields):
    import tensorflow as tf

    return tf.roll(tf.reverse(fields, [1]), 1, 1)


def reflect_columns(fields):
    import tensorflow as tf

    return tf.roll(tf.reverse(fields, [2]), 1, 2)


STEPS = (transpose, reflect_rows, reflect_columns)  # bits 1, 2, 4 of an element's number


def square_symmetry(fields, element: int, inverse: bool = False):
    """Element ``element`` (0..7) of the group, or its inverse (the same steps in reverse order: each undoes
    itself), applied to ``fields``."""
    steps = [step for bit, step in enumerate(STEPS) if element & (1 << bit)]
    for step in (reversed(steps) if inverse else steps):
        fields = step(fields)
    return fields
