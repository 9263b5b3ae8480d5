"""The field losses against numpy, the ranks' augmentations (images; square fields) and batch-norm recalibration."""
from __future__ import annotations

import numpy as np
import pytest

from spark_ml_pipeline.train.augmentation import augmentation_problem, augmenter
from spark_ml_pipeline.train.keras_rank import recalibrate_batch_norm
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


def test_augmentation_shifts_and_flips_images_and_keeps_their_shape_and_labels():
    images = np.zeros((64, 28, 28), np.float32)
    images[:, 10:18, 4:8] = 1.0  # a bar left of the centre
    labels = np.arange(64, dtype=np.int32)
    augment = augmenter("shift_flip", (28, 28), (), seed=3)
    out, out_labels = (np.asarray(t) for t in augment(images, labels))
    assert out.shape == images.shape
    np.testing.assert_array_equal(out_labels, labels)  # class labels do not move
    assert set(np.unique(out)) <= {0.0, 1.0}  # whole-pixel shifts, zero fill: no interpolation
    changed = [not np.array_equal(a, images[0]) for a in out]
    assert 0 < sum(changed) < 64  # random per image
    flipped = out[:, :, 14:].sum((1, 2)) > out[:, :, :14].sum((1, 2))  # the bar moved to the right half
    assert 0 < flipped.sum() < 64
    assert augmenter("none", (28, 28), (), 0) is None
    with pytest.raises(ValueError, match="needs image inputs"):
        augmenter("shift_flip", (784,), (), 0)
    with pytest.raises(ValueError, match="augment must be one of none, shift_flip, dihedral, got 'rotate'"):
        augmenter("rotate", (28, 28), (), 0)


def _square_symmetries(field):
    """The 8 images of an (N, N) field under the square's symmetries, reflections about point 0 (i -> -i mod N)."""
    def reflect(f, axis):
        return np.roll(np.flip(f, axis), 1, axis)

    images = []
    for transpose in (False, True):
        for rows in (False, True):
            for cols in (False, True):
                f = field.T if transpose else field
                f = reflect(f, 0) if rows else f
                images.append(reflect(f, 1) if cols else f)
    return images


def test_dihedral_moves_the_field_and_its_target_together_and_leaves_coordinates():
    n, batch = 6, 256
    field = np.random.default_rng(0).random((n, n)).astype(np.float32)  # no symmetry of its own
    coordinates = np.random.default_rng(1).random((n, n, 2)).astype(np.float32)
    features = np.concatenate([np.broadcast_to(field[..., None], (n, n, 1)), coordinates], -1)
    features = np.broadcast_to(features, (batch, n, n, 3)).copy()
    targets = np.broadcast_to(2 * field, (batch, n, n)).copy()  # an equivariant map: the target is twice the field
    augment = augmenter("dihedral", (n, n, 3), (n, n), seed=5, channels=1)
    x, y = (np.asarray(t) for t in augment(features, targets))
    assert x.shape == features.shape and y.shape == targets.shape
    np.testing.assert_allclose(y, 2 * x[..., 0])  # every example's target moved with its field
    np.testing.assert_array_equal(x[..., 1:], features[..., 1:])  # grid coordinates stay where they are
    images = _square_symmetries(field)
    seen = {next(k for k, image in enumerate(images) if np.array_equal(image, f)) for f in x[..., 0]}
    assert seen == set(range(8))  # each example one of the 8 symmetries, all of them drawn
    assert (x[:, 0, 0, 0] == field[0, 0]).all()  # the reflections keep grid point 0 in place
    # Without augment_channels every input channel moves.
    moved, _ = augmenter("dihedral", (n, n, 3), (n, n), seed=5)(features, targets)
    assert not np.array_equal(moved.numpy()[..., 1:], features[..., 1:])


def test_an_augmentation_that_does_not_fit_the_data_is_one_line():
    assert augmentation_problem("dihedral", (16, 16, 3), (16, 16), 1) is None
    assert "square input field" in augmentation_problem("dihedral", (16, 8), (16, 8))
    assert "target field on the same grid" in augmentation_problem("dihedral", (16, 16), ())
    assert augmentation_problem("dihedral", (16, 16, 3), (16, 16), 4) == (
        "augment_channels=4 exceeds the input's 3 channel(s) (input_shape (16, 16, 3))")


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
