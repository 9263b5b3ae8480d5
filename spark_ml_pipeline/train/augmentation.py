"""Random transformations of the ranks' training batches (``training.augment``).

* ``shift_flip`` (images with class labels): every image shifted by up to :data:`SHIFT` pixels (zero fill) and
  flipped left-right at random; the label stays.
* ``dihedral`` (square fields with field targets, e.g. PDE surrogates): every example's input field and target
  field transposed and reflected together at random, one of the 8 symmetries of the square per example
  (:mod:`.models.square_symmetry`: reflections of a periodic grid about point 0, exact for neuraloperator's Darcy
  grids). Only the first ``augment_channels`` input channels move with the target; the others (grid
  coordinates) keep their place.

:func:`augmentation_problem` checks a setting against the data's shapes before any job runs; :func:`augmenter`
builds the function a rank maps over its batches (TensorFlow imported there: the estimator's check needs none).
"""
from __future__ import annotations

from typing import Optional

from spark_ml_pipeline.train.keras_settings import AUGMENTATIONS
from spark_ml_pipeline.train.models.square_symmetry import STEPS

SHIFT = 2  # pixels: a random crop of the image padded by 2, as in the CIFAR ResNet recipe


def _square_field(shape: tuple[int, ...]) -> bool:
    return len(shape) in (2, 3) and shape[0] == shape[1]


def augmentation_problem(kind: str, input_shape: tuple[int, ...], label_shape: tuple[int, ...],
                         channels: Optional[int] = None) -> Optional[str]:
    """Why ``kind`` cannot transform examples of these shapes (one line), or None when it can."""
    if kind == "none":
        return None
    if kind == "shift_flip":
        if len(input_shape) not in (2, 3):
            return f"augment={kind} needs image inputs (H, W) or (H, W, C), got input_shape {input_shape}"
        return None
    if kind == "dihedral":
        if not _square_field(input_shape) or tuple(label_shape[:2]) != tuple(input_shape[:2]) \
                or len(label_shape) not in (2, 3):
            return (f"augment={kind} needs a square input field (N, N[, C]) and a target field on the same grid, "
                    f"got input_shape {input_shape} and label_shape {label_shape}")
        available = input_shape[2] if len(input_shape) == 3 else 1
        if channels is not None and channels > available:
            return f"augment_channels={channels} exceeds the input's {available} channel(s) (input_shape {input_shape})"
        return None
    return f"augment must be one of {', '.join(AUGMENTATIONS)}, got {kind!r}"


def augmenter(kind: str, input_shape: tuple[int, ...], label_shape: tuple[int, ...], seed: int,
              channels: Optional[int] = None):
    """A function of a batch ``(features, labels) -> (features, labels)`` for ``kind``, or None for ``none``.
    Vectorised over the batch, so it costs little next to a training step."""
    problem = augmentation_problem(kind, input_shape, label_shape, channels)
    if problem:
        raise ValueError(problem)
    if kind == "none":
        return None
    return (_shift_flip if kind == "shift_flip" else _dihedral)(input_shape, label_shape, seed, channels)


def _shift_flip(input_shape, _label_shape, seed: int, _channels):
    import tensorflow as tf
    from tensorflow import keras

    height, width = input_shape[:2]
    as_images = (-1, height, width, input_shape[2] if len(input_shape) == 3 else 1)
    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    shift = keras.layers.RandomTranslation(SHIFT / height, SHIFT / width, fill_mode="constant",
                                           interpolation="nearest", seed=seed + 1)

    def augment(images, labels):
        shaped = tf.reshape(images, as_images)
        return tf.reshape(shift(flip(shaped, training=True), training=True), tf.shape(images)), labels

    return augment


def _dihedral(input_shape, label_shape, seed: int, channels: Optional[int]):
    import tensorflow as tf

    input_channels = input_shape[2] if len(input_shape) == 3 else 1
    label_channels = label_shape[2] if len(label_shape) == 3 else 1
    moved = input_channels if channels is None else channels

    def augment(features, labels):
        batch = tf.shape(features)[0]
        x = tf.reshape(features, (batch, *input_shape[:2], input_channels))
        y = tf.cast(tf.reshape(labels, (batch, *label_shape[:2], label_channels)), x.dtype)
        fields = tf.concat([x[..., :moved], y], axis=-1)
        for k, step in enumerate(STEPS):  # each applied or not, per example: the 8 elements of the group
            chosen = tf.random.uniform((batch, 1, 1, 1), seed=seed + k) < 0.5
            fields = tf.where(chosen, step(fields), fields)
        x = tf.concat([fields[..., :moved], x[..., moved:]], axis=-1)
        y = fields[..., moved:]
        return tf.reshape(x, tf.shape(features)), tf.cast(tf.reshape(y, tf.shape(labels)), labels.dtype)

    return augment
