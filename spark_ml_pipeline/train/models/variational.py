"""Variational autoencoder (VAE, Kingma & Welling 2014): an autoencoder whose code is a Gaussian posterior
q(z|x) = N(z_mean, exp(z_log_var)), regularised towards the prior N(0, I), so the decoder also generates images
from draws of the prior.

Layers (the encoder and decoder halves are the plain autoencoder's, :mod:`.autoencoder`, ``dense`` or ``conv``)::

    input -> encoder -> code (Dense: z_mean, linear)    -\\
                     -> z_log_var (Dense, linear)        -+-> z (GaussianSampling) -> decoder -> reconstruction

* ``code`` is the posterior mean: :func:`.autoencoder.encoder_of` cuts input -> z_mean out of a built or
  reloaded VAE, so a pipeline writes the latent means as features exactly as it writes an autoencoder's codes;
  :func:`.autoencoder.decoder_of` cuts z -> reconstruction out of it (images from z ~ N(0, I)).
* ``z`` (:class:`GaussianSampling`, this module's registered layer) draws z = z_mean + exp(z_log_var / 2) * eps,
  eps ~ N(0, I) (the reparameterisation trick) in training only; at inference it returns z_mean, so
  ``predict`` and Spark scoring are deterministic (the reconstruction of the posterior mean).
* ``z`` also adds the KL term to the model's losses (``add_loss``): ``kl_weight`` x the batch mean of
  KL(q(z|x) || N(0, I)) = -1/2 sum_j (1 + log_var_j - mean_j^2 - exp(log_var_j)) (nats per image, summed over the
  latent dimensions), **divided by the number of input values** (784 for 28 x 28). Keras' compiled losses
  (``binary_crossentropy``, ``mse``) average over the pixels, so with ``binary_crossentropy`` and
  ``kl_weight: 1`` the training loss is exactly the negative ELBO per pixel under a Bernoulli likelihood (times
  the pixels: :func:`negative_elbo`'s nats per image, the figure reported); ``kl_weight`` is the beta of a
  beta-VAE. (With ``mse`` the loss is the ELBO of a Gaussian likelihood of fixed variance 1/2, up to a constant:
  a far weaker reconstruction term, so keep ``binary_crossentropy``, as the pipeline does.) Because the KL is
  part of the loss the ranks minimise, the standard ``model.fit`` trains it unchanged, and Horovod's
  DistributedOptimizer averages its gradients across ranks with the reconstruction term's.

The layer is registered with Keras under the ``spark_ml_pipeline`` package (:mod:`.own_layers`) and allowed by name
in :mod:`.loading`'s safe loader, like the FNO's and the transformer's.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.autoencoder import (CODE_LAYER, SAMPLE_LAYER, conv_decoder, conv_encoder,
                                                        decoder_of, dense_decoder, dense_encoder)
from spark_ml_pipeline.train.models.mlp import Activation, ShapeLike, SpecBase, as_shape, check_activation
from spark_ml_pipeline.train.models.own_layers import OwnLayers

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras
LOG_VAR_LAYER = "z_log_var"
BCE_EPSILON = 1e-7  # Keras' clipping of probabilities in binary_crossentropy


class VAESpec(SpecBase):
    kind: Literal["vae"] = "vae"
    variant: Literal["dense", "conv"] = "conv"
    code_size: PositiveInt = 16  # latent dimensions
    hidden: list[PositiveInt] = [256, 128]  # dense variant: encoder Dense sizes (decoder mirrors them)
    filters: list[PositiveInt] = Field([32, 64], min_length=1)  # conv variant: encoder conv filters (mirrored)
    kernel_size: PositiveInt = 3  # conv variant
    activation: Activation = "relu"
    reconstruction_activation: Activation = "sigmoid"
    kl_weight: float = Field(1.0, ge=0.0)  # beta: 1 = the ELBO (with binary_crossentropy), < 1 sharper images


def _define_layers() -> list[type]:
    import tensorflow as tf
    from tensorflow import keras

    class GaussianSampling(keras.layers.Layer):
        """[z_mean, z_log_var] -> z: a reparameterised draw of N(z_mean, exp(z_log_var)) in training, z_mean at
        inference. Adds ``kl_weight`` x the batch mean of KL(N(z_mean, exp(z_log_var)) || N(0, I)) (summed over
        the latent dimensions) to the model's losses on every call. Computes in float32."""

        def __init__(self, kl_weight: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.kl_weight = float(kl_weight)

        def call(self, inputs, training=None):
            z_mean, z_log_var = (tf.cast(t, tf.float32) for t in inputs)
            kl = -0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=-1)
            self.add_loss(self.kl_weight * tf.reduce_mean(kl))

            def draw():
                return z_mean + tf.exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean))

            if training is None or isinstance(training, bool):  # the usual case: fit/predict pass a Python bool
                return draw() if training else z_mean
            return tf.cond(tf.cast(training, tf.bool), draw, lambda: z_mean)

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "kl_weight": self.kl_weight}

    return [GaussianSampling]


OWN_LAYERS = OwnLayers(_define_layers, names=("GaussianSampling",))


def build_vae(spec: VAESpec, input_shape: ShapeLike, output_shape: Optional[ShapeLike] = None,
              output_activation: Optional[str] = None) -> "keras.Model":
    """``output_shape`` may be omitted (it must equal ``input_shape``); ``output_activation``, if given,
    overrides ``spec.reconstruction_activation``."""
    from tensorflow import keras

    own = OWN_LAYERS.classes()
    input_shape = as_shape(input_shape, "input_shape")
    if output_shape is not None and as_shape(output_shape, "output_shape") != input_shape:
        raise ValueError(f"an autoencoder reconstructs its input: output_shape {output_shape} != {input_shape}")
    activation = check_activation(output_activation) or spec.reconstruction_activation
    if spec.variant == "conv":
        inputs, x, feature_shape = conv_encoder(spec, input_shape)
    else:
        inputs, x = dense_encoder(spec, input_shape)
    z_mean = keras.layers.Dense(spec.code_size, dtype="float32", name=CODE_LAYER)(x)
    z_log_var = keras.layers.Dense(spec.code_size, dtype="float32", name=LOG_VAR_LAYER)(x)
    # The KL per image over the pixels the compiled loss averages: kl_weight 1 = the ELBO per pixel.
    kl_weight = spec.kl_weight / math.prod(input_shape)
    z = own["GaussianSampling"](kl_weight, dtype="float32", name=SAMPLE_LAYER)([z_mean, z_log_var])
    if spec.variant == "conv":
        outputs = conv_decoder(spec, z, feature_shape, input_shape, activation)
    else:
        outputs = dense_decoder(spec, z, input_shape, activation)
    return keras.Model(inputs, outputs, name=f"{spec.variant}_vae")


def posterior_of(model: "keras.Model") -> "keras.Model":
    """The input -> [z_mean, z_log_var] sub-model of a VAE (built or loaded); weights shared with ``model``."""
    from tensorflow import keras

    try:
        mean, log_var = model.get_layer(CODE_LAYER), model.get_layer(LOG_VAR_LAYER)
    except ValueError as err:
        raise ValueError(f"model {model.name!r} has no {CODE_LAYER!r} and {LOG_VAR_LAYER!r} layers; "
                         "is it a VAE?") from err
    return keras.Model(model.inputs, [mean.output, log_var.output], name="posterior")


def kl_divergence(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per row, in nats (summed over the latent dimensions)."""
    z_mean, z_log_var = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    return -0.5 * np.sum(1.0 + z_log_var - z_mean ** 2 - np.exp(z_log_var), axis=-1)


def bernoulli_nll(images: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """-log p(x | z) per image under independent Bernoulli pixels (binary cross-entropy summed over the pixels,
    nats; Keras' clipping of the probabilities), for images in [0, 1]. On grey-level images it is a
    cross-entropy, not a normalised likelihood: its minimum is the images' own entropy, not 0."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    p = np.clip(np.asarray(probabilities, np.float64).reshape(len(images), -1), BCE_EPSILON, 1 - BCE_EPSILON)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)


def negative_elbo(model: "keras.Model", images: np.ndarray, samples: int = 1, seed: int = 0,
                  batch_size: int = 512) -> dict[str, float]:
    """A VAE's negative ELBO in nats per image, averaged over ``images`` (values in [0, 1], the input shape):

    * ``negative_elbo`` = -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)), the loss a ``kl_weight: 1`` VAE
      minimises (times the pixels), the expectation estimated with ``samples`` draws of z per image (seeded);
    * ``reconstruction_nll``: that first (Bernoulli, :func:`bernoulli_nll`) term; ``kl``: the second (exact).

    Lower is better; the KL is the information the code carries about an image, in nats."""
    posterior, decoder = posterior_of(model), decoder_of(model)
    rng = np.random.default_rng(seed)
    nll_sum, kl_sum = 0.0, 0.0
    for start in range(0, len(images), batch_size):
        x = np.asarray(images[start:start + batch_size], np.float32)
        z_mean, z_log_var = (t.numpy().astype(np.float64) for t in posterior(x, training=False))
        kl_sum += float(kl_divergence(z_mean, z_log_var).sum())
        for _ in range(samples):
            z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape)
            decoded = decoder(z.astype(np.float32), training=False).numpy()
            nll_sum += float(bernoulli_nll(x, decoded).sum()) / samples
    n = max(len(images), 1)
    return {"negative_elbo": (nll_sum + kl_sum) / n, "reconstruction_nll": nll_sum / n, "kl": kl_sum / n}


def prior_samples(model: "keras.Model", count: int = 64, seed: int = 0) -> np.ndarray:
    """``count`` images decoded from z ~ N(0, I) (seeded): (count, *input_shape)."""
    decoder = decoder_of(model)
    z = np.random.default_rng(seed).standard_normal((count, decoder.input_shape[-1])).astype(np.float32)
    return decoder(z, training=False).numpy()


ARCHITECTURE = declare(Architecture(spec=VAESpec, build=build_vae, own_layers=OWN_LAYERS, reconstructs_input=True,
                                    variational=True))
