"""Losses for field-to-field surrogates, beside Keras' own (which are named as Keras names them).

* ``relative_l2``: per sample ||prediction - target|| / ||target||, averaged over the batch. It is the Darcy
  benchmark's metric, so the fit optimises what is reported; unlike MSE it weighs every sample equally however
  large its field.
* ``relative_h1``: the same ratio in the H1 norm, sqrt(||e||^2 + ||grad e||^2) / sqrt(||y||^2 + ||grad y||^2),
  with the gradient taken by forward differences along the grid's two axes, scaled by the grid size (spacing
  1 / n). It penalises wrong slopes as well as wrong values, which sharpens fields with kinks (Darcy's solution
  bends where the coefficient jumps).

Fields are (B, H, W) or (B, H, W, C). TensorFlow is imported when a loss is resolved, inside the rank.
"""
from __future__ import annotations

from typing import Callable, Union

FIELD_LOSSES = ("relative_l2", "relative_h1")
EPSILON = 1e-12


def _per_sample_squared_norm(tf, values):
    return tf.reduce_sum(tf.reshape(tf.square(values), [tf.shape(values)[0], -1]), axis=1)


def _squared_gradient_norm(tf, field):
    """Sum of squared forward differences along H and W, each scaled by that axis' number of points."""
    rows = tf.cast(tf.shape(field)[1], field.dtype)
    cols = tf.cast(tf.shape(field)[2], field.dtype)
    along_h = (field[:, 1:] - field[:, :-1]) * rows
    along_w = (field[:, :, 1:] - field[:, :, :-1]) * cols
    return _per_sample_squared_norm(tf, along_h) + _per_sample_squared_norm(tf, along_w)


def relative_l2(y_true, y_pred):
    import tensorflow as tf

    y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
    error = _per_sample_squared_norm(tf, y_pred - y_true)
    return tf.sqrt(error / (_per_sample_squared_norm(tf, y_true) + EPSILON) + EPSILON)


def relative_h1(y_true, y_pred):
    import tensorflow as tf

    y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
    error = y_pred - y_true
    numerator = _per_sample_squared_norm(tf, error) + _squared_gradient_norm(tf, error)
    denominator = _per_sample_squared_norm(tf, y_true) + _squared_gradient_norm(tf, y_true)
    return tf.sqrt(numerator / (denominator + EPSILON) + EPSILON)


_OWN: dict[str, Callable] = {"relative_l2": relative_l2, "relative_h1": relative_h1}


def resolve_loss(name: str) -> Union[str, Callable]:
    """The loss to compile with: one of :data:`FIELD_LOSSES` as a function, any other name as Keras knows it
    (checked here, so a typo fails before the first step with the name in the message)."""
    if name in _OWN:
        return _OWN[name]
    from tensorflow import keras

    try:
        keras.losses.get(name)
    except ValueError:
        raise ValueError(f"unknown loss {name!r}: a Keras loss name or one of {', '.join(FIELD_LOSSES)}") from None
    return name
