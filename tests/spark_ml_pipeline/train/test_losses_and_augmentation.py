"""The field losses against numpy, and the ranks' image augmentation and batch-norm recalibration."""
from __future__ import annotations

import numpy as np
import pytest

from spark_ml_pipeline.train.keras_rank import augmenter, recalibrate_batch_norm
from spark_ml_pipeline.train.losses import relative_h1, relative_l2, resolve_loss

keras = pytest.importorskip("tensorflow").keras


def fields(seed):
    return np.random.default_rng(seed).random((3, 6, 5), dtype=np.float32)


def test_relative_l2_and_h1_match_their_definitions():
    target, prediction = fields(0), fields(1)
    error = prediction - target
    expected_l2 = np.linalg.norm(error.reshape(3, -1), axis=1) / np.linalg.norm(target.reshape(3, -1), axis=1)
    np.testing.assert_allclose(relative_l2(target, prediction).numpy(), expected_l2, rtol=1e-5)

    def h1_squared(f):  # forward differences scaled by the number of points along each axis
        return ((f ** 2).sum((1, 2)) + ((np.diff(f, axis=1) * 6) ** 2).sum((1, 2))
                + ((np.diff(f, axis=2) * 5) ** 2).sum((1, 2)))

    np.testing.assert_allclose(relative_h1(target, prediction).numpy(),
                               np.sqrt(h1_squared(error) / h1_squared(target)), rtol=1e-5)
    assert relative_h1(target, target).numpy().max() < 1e-5  # exact prediction: zero loss (finite gradient)
    # A constant offset costs the same in both norms' numerator values but nothing in the gradient term.
    shifted = target + 0.1
    assert (relative_h1(target, shifted).numpy() < relative_l2(target, shifted).numpy()).all()


def test_losses_resolve_by_name_and_an_unknown_one_is_named():
    assert resolve_loss("relative_h1") is relative_h1
    assert resolve_loss("mse") == "mse"
    with pytest.raises(ValueError, match="unknown loss 'relative_l3'"):
        resolve_loss("relative_l3")


def test_augmentation_shifts_and_flips_images_and_keeps_their_shape():
    images = np.zeros((64, 28, 28), np.float32)
    images[:, 10:18, 4:8] = 1.0  # a bar left of the centre
    augment = augmenter("shift_flip", (28, 28), seed=3)
    out = augment(images).numpy()
    assert out.shape == images.shape
    assert set(np.unique(out)) <= {0.0, 1.0}  # whole-pixel shifts, zero fill: no interpolation
    changed = [not np.array_equal(a, images[0]) for a in out]
    assert 0 < sum(changed) < 64  # random per image
    flipped = out[:, :, 14:].sum((1, 2)) > out[:, :, :14].sum((1, 2))  # the bar moved to the right half
    assert 0 < flipped.sum() < 64
    assert augmenter("none", (28, 28), 0) is None
    with pytest.raises(ValueError, match="needs image inputs"):
        augmenter("shift_flip", (784,), 0)
    with pytest.raises(ValueError, match="augment must be one of"):
        augmenter("rotate", (28, 28), 0)


def test_recalibration_sets_batch_norm_statistics_to_the_datas():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9)(inputs))
    data = np.random.default_rng(0).normal(5.0, 3.0, (64, 4)).astype(np.float32)
    assert recalibrate_batch_norm(model, data, batch_size=16, batches=10) == 4  # all the data has
    layer = model.layers[-1]
    batches = data.reshape(4, 16, 4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), batches.mean(1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), batches.var(1).mean(0), rtol=1e-4)
    assert layer.momentum == 0.9  # restored
