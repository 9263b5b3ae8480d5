"""DCGAN-style generator and discriminator (Radford et al. 2016), optionally conditional on a class label.

Not in the zoo's :data:`~.zoo.ModelSpec` union (a GAN is two models trained against each other, not one model
``fit`` can train): :mod:`spark_ml_pipeline.train.gan_rank` trains them, each with its own optimizer.

* Generator: one input ``latent`` = noise (``noise_dim``) followed, when ``conditional``, by the class as a
  one-hot vector (``classes``), so the generator is a one-input model that scores an array column through
  Spark like every other Keras model. Inside, the two parts are cut apart with built-in cropping layers, the
  one-hot class goes through a bias-free Dense layer (a label embedding: one learned row per class) and is
  concatenated to the noise. Then Dense -> BN -> LeakyReLU -> reshape to ``H / 2^k x W / 2^k`` ->
  ``k`` stride-2 transposed convs (BN + LeakyReLU between, ``k = len(generator_filters)``) -> the image in
  ``[0, 1]`` (sigmoid: the pipelines' pixels are normalised to [0, 1]).
* Discriminator: inputs ``image`` and (conditional) ``label`` (integer class); the label's embedding is
  projected to an ``H x W`` plane concatenated to the image as a second channel; stride-2 convs with LeakyReLU
  and dropout; one logit.

Only built-in Keras layers, so both load with the safe loader (:mod:`.loading`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.mlp import BN_MOMENTUM, ShapeLike, SpecBase, as_shape

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

LEAK = 0.2


class GANSpec(SpecBase):
    kind: Literal["dcgan"] = "dcgan"
    noise_dim: PositiveInt = 64
    conditional: bool = True  # class label -> generator and discriminator
    classes: PositiveInt = 10  # conditional only
    label_embedding: PositiveInt = 16  # size of the label's embedding in either network
    # Transposed-conv stages of the generator (each doubles H and W; the last one outputs the image).
    generator_filters: list[PositiveInt] = Field([64, 32], min_length=1)
    discriminator_filters: list[PositiveInt] = Field([32, 64], min_length=1)  # stride-2 convs
    kernel_size: PositiveInt = 5
    dropout: float = Field(0.3, ge=0.0, lt=1.0)  # discriminator, after each conv
    # Training (read by gan_rank): Adam with beta_1 = 0.5 (DCGAN); the discriminator's rate defaults to the
    # training rate; one-sided label smoothing: real targets 1 - label_smoothing for the discriminator.
    beta_1: float = Field(0.5, ge=0.0, lt=1.0)
    discriminator_learning_rate: Optional[float] = Field(None, gt=0)
    label_smoothing: float = Field(0.1, ge=0.0, lt=0.5)

    def latent_dim(self) -> int:
        return self.noise_dim + (self.classes if self.conditional else 0)


def _image_shape(image_shape: ShapeLike) -> tuple[int, ...]:
    shape = as_shape(image_shape, "image_shape")
    if len(shape) not in (2, 3):
        raise ValueError(f"a GAN generates images (H, W) or (H, W, C), got {shape}")
    return shape


def build_generator(spec: GANSpec, image_shape: ShapeLike) -> "keras.Model":
    from tensorflow import keras

    layers = keras.layers
    shape = _image_shape(image_shape)
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    scale = 2 ** len(spec.generator_filters)
    if height % scale or width % scale:
        raise ValueError(f"{len(spec.generator_filters)} generator stages need H and W divisible by {scale}, "
                         f"got {height} x {width}")
    base_h, base_w = height // scale, width // scale
    latent = keras.Input(shape=(spec.latent_dim(),), name="latent")
    x = latent
    if spec.conditional:
        column = layers.Reshape((spec.latent_dim(), 1), name="latent_column")(latent)
        noise = layers.Flatten(name="noise")(layers.Cropping1D((0, spec.classes), name="noise_part")(column))
        one_hot = layers.Cropping1D((spec.noise_dim, 0), name="class_part")(column)
        one_hot = layers.Flatten(name="class_one_hot")(one_hot)
        embedded = layers.Dense(spec.label_embedding, use_bias=False, name="label_embedding")(one_hot)
        x = layers.Concatenate(name="noise_and_label")([noise, embedded])
    first = spec.generator_filters[0]
    x = layers.Dense(base_h * base_w * first, use_bias=False, name="project")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="project_bn")(x)
    x = layers.LeakyReLU(LEAK, name="project_act")(x)
    x = layers.Reshape((base_h, base_w, first), name="project_reshape")(x)
    for i, filters in enumerate(spec.generator_filters[1:]):
        x = layers.Conv2DTranspose(filters, spec.kernel_size, strides=2, padding="same", use_bias=False,
                                   name=f"up{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"up{i}_bn")(x)
        x = layers.LeakyReLU(LEAK, name=f"up{i}_act")(x)
    x = layers.Conv2DTranspose(channels, spec.kernel_size, strides=2, padding="same", activation="sigmoid",
                               dtype="float32", name="to_image")(x)
    image = layers.Reshape(shape, dtype="float32", name="image")(x)
    return keras.Model(latent, image, name="generator")


def build_discriminator(spec: GANSpec, image_shape: ShapeLike) -> "keras.Model":
    from tensorflow import keras

    layers = keras.layers
    shape = _image_shape(image_shape)
    height, width = shape[:2]
    image = keras.Input(shape=shape, name="image")
    x = layers.Reshape(shape + (1,), name="add_channel")(image) if len(shape) == 2 else image
    inputs = [image]
    if spec.conditional:
        label = keras.Input(shape=(1,), dtype="int32", name="label")
        inputs.append(label)
        embedded = layers.Flatten(name="label_flat")(
            layers.Embedding(spec.classes, spec.label_embedding, name="label_embedding")(label))
        plane = layers.Dense(height * width, name="label_plane")(embedded)
        plane = layers.Reshape((height, width, 1), name="label_plane_reshape")(plane)
        x = layers.Concatenate(name="image_and_label")([x, plane])
    for i, filters in enumerate(spec.discriminator_filters):
        x = layers.Conv2D(filters, spec.kernel_size, strides=2, padding="same", name=f"down{i}")(x)
        x = layers.LeakyReLU(LEAK, name=f"down{i}_act")(x)
        if spec.dropout:
            x = layers.Dropout(spec.dropout, name=f"down{i}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, logit, name="discriminator")


def latent_vectors(noise, labels, spec: GANSpec):
    """numpy: the generator's input for ``noise`` (N, noise_dim) and integer ``labels`` (N,)."""
    import numpy as np

    noise = np.asarray(noise, dtype="float32")
    if not spec.conditional:
        return noise
    return np.concatenate([noise, np.eye(spec.classes, dtype="float32")[np.asarray(labels, dtype="int64")]], axis=1)

