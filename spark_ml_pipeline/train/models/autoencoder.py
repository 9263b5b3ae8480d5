"""Autoencoders (input -> code -> reconstruction of the input's shape), dense or convolutional.

The bottleneck is a Dense layer named ``code`` (linear by default); :func:`encoder_of` cuts the input -> code
sub-model out of a built *or reloaded* autoencoder, so the encoder can serve as a feature extractor, and
:func:`decoder_of` the code -> reconstruction one::

    model = load_keras_model("ae.keras")   # spark_ml_pipeline.train.models.loading
    features = encoder_of(model).predict(images)   # (N, code_size)
    images = decoder_of(model).predict(codes)      # (N, *input_shape)

* ``dense``: Flatten -> ``hidden`` Dense layers -> code -> reversed ``hidden`` -> Dense -> Reshape; any input.
* ``conv``: images (H, W) or (H, W, C); a stride-2 conv per ``filters`` entry -> Flatten -> code -> Dense ->
  Reshape -> a stride-2 transposed conv per entry (reversed) -> 3x3 conv to the input's channels, cropped back
  to H x W when H or W is not divisible by ``2 ** len(filters)``.

The reconstruction uses ``reconstruction_activation`` (``sigmoid``, for inputs scaled to [0, 1]). The encoder and
decoder halves are shared with the variational autoencoder (:mod:`.variational`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.cnn import image_input
from spark_ml_pipeline.train.models.mlp import (Activation, ShapeLike, SpecBase, as_shape, check_activation,
                                                dense_stack)

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

CODE_LAYER = "code"
SAMPLE_LAYER = "z"  # a VAE's latent draw (see .variational); the decoder starts after it


class AutoencoderSpec(SpecBase):
    kind: Literal["autoencoder"] = "autoencoder"
    variant: Literal["dense", "conv"] = "dense"
    code_size: PositiveInt = 32
    hidden: list[PositiveInt] = [256, 128]  # dense variant: encoder Dense sizes (decoder mirrors them)
    filters: list[PositiveInt] = Field([32, 64], min_length=1)  # conv variant: encoder conv filters (mirrored)
    kernel_size: PositiveInt = 3  # conv variant
    activation: Activation = "relu"
    code_activation: Activation = "linear"
    reconstruction_activation: Activation = "sigmoid"


def dense_encoder(spec, input_shape: tuple[int, ...]):
    """Input -> Flatten -> ``spec.hidden`` Dense layers: (the model's input, the features a code is made of)."""
    from tensorflow import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    return inputs, dense_stack(x, spec.hidden, spec.activation, 0.0, False, prefix="encoder")


def dense_decoder(spec, code, input_shape: tuple[int, ...], activation: str):
    """A code -> reversed ``spec.hidden`` Dense layers -> Dense -> the ``reconstruction`` of ``input_shape``."""
    from tensorflow import keras

    x = dense_stack(code, spec.hidden[::-1], spec.activation, 0.0, False, prefix="decoder")
    x = keras.layers.Dense(math.prod(input_shape), activation=activation, dtype="float32", name="decoder_out")(x)
    return keras.layers.Reshape(input_shape, dtype="float32", name="reconstruction")(x)


def conv_encoder(spec, input_shape: tuple[int, ...]):
    """Images -> a stride-2 conv per ``spec.filters`` entry -> Flatten: (the model's input, the flat features,
    the last conv's feature shape the decoder starts from)."""
    from tensorflow import keras

    inputs, x = image_input(input_shape)
    for i, f in enumerate(spec.filters):
        x = keras.layers.Conv2D(f, spec.kernel_size, strides=2, padding="same", activation=spec.activation,
                                name=f"encoder_conv{i}")(x)
    feature_shape = tuple(x.shape[1:])
    return inputs, keras.layers.Flatten(name="flatten")(x), feature_shape


def conv_decoder(spec, code, feature_shape: tuple[int, ...], input_shape: tuple[int, ...], activation: str):
    """A code -> Dense -> Reshape to ``feature_shape`` -> a stride-2 transposed conv per ``spec.filters`` entry
    (reversed) -> crop to the input's H x W -> 3x3 conv to its channels -> the ``reconstruction``."""
    from tensorflow import keras

    layers = keras.layers
    height, width = input_shape[:2]
    channels = input_shape[2] if len(input_shape) == 3 else 1
    x = layers.Dense(math.prod(feature_shape), activation=spec.activation, name="decoder_dense")(code)
    x = layers.Reshape(feature_shape, name="decoder_reshape")(x)
    for i, f in enumerate(spec.filters[::-1]):
        x = layers.Conv2DTranspose(f, spec.kernel_size, strides=2, padding="same", activation=spec.activation,
                                   name=f"decoder_deconv{i}")(x)
    extra_h, extra_w = x.shape[1] - height, x.shape[2] - width
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                              name="decoder_crop")(x)
    x = layers.Conv2D(channels, spec.kernel_size, padding="same", activation=activation, dtype="float32",
                      name="decoder_out")(x)
    return layers.Reshape(input_shape, dtype="float32", name="reconstruction")(x)


def _dense_autoencoder(spec: AutoencoderSpec, input_shape: tuple[int, ...], activation: str):
    from tensorflow import keras

    inputs, x = dense_encoder(spec, input_shape)
    code = keras.layers.Dense(spec.code_size, activation=spec.code_activation, name=CODE_LAYER)(x)
    return inputs, dense_decoder(spec, code, input_shape, activation)


def _conv_autoencoder(spec: AutoencoderSpec, input_shape: tuple[int, ...], activation: str):
    from tensorflow import keras

    inputs, x, feature_shape = conv_encoder(spec, input_shape)
    code = keras.layers.Dense(spec.code_size, activation=spec.code_activation, name=CODE_LAYER)(x)
    return inputs, conv_decoder(spec, code, feature_shape, input_shape, activation)


def build_autoencoder(spec: AutoencoderSpec, input_shape: ShapeLike, output_shape: Optional[ShapeLike] = None,
                      output_activation: Optional[str] = None) -> "keras.Model":
    """``output_shape`` may be omitted (it must equal ``input_shape``); ``output_activation``, if given,
    overrides ``spec.reconstruction_activation``."""
    from tensorflow import keras

    input_shape = as_shape(input_shape, "input_shape")
    if output_shape is not None and as_shape(output_shape, "output_shape") != input_shape:
        raise ValueError(f"an autoencoder reconstructs its input: output_shape {output_shape} != {input_shape}")
    activation = check_activation(output_activation) or spec.reconstruction_activation
    build = _conv_autoencoder if spec.variant == "conv" else _dense_autoencoder
    inputs, outputs = build(spec, input_shape, activation)
    return keras.Model(inputs, outputs, name=f"{spec.variant}_autoencoder")


def encoder_of(model: "keras.Model") -> "keras.Model":
    """The input -> ``code`` sub-model of an autoencoder (freshly built or loaded with ``load_model``).
    Its weights are shared with ``model``."""
    from tensorflow import keras

    try:
        code = model.get_layer(CODE_LAYER)
    except ValueError as err:
        raise ValueError(f"model {model.name!r} has no {CODE_LAYER!r} layer; is it an autoencoder?") from err
    return keras.Model(model.inputs, code.output, name="encoder")


def decoder_of(model: "keras.Model") -> "keras.Model":
    """The code -> ``reconstruction`` sub-model of an autoencoder or a VAE (freshly built or loaded): a new
    input of the code's size, through the layers after the latent one (``code``; a VAE's sampled ``z``). The
    decoders here are chains, so this is the decoder. Its weights are shared with ``model``; a VAE's decoder
    maps draws from the prior N(0, I) to images."""
    from tensorflow import keras

    names = [layer.name for layer in model.layers]
    latent = next((name for name in (SAMPLE_LAYER, CODE_LAYER) if name in names), None)
    if latent is None:
        raise ValueError(f"model {model.name!r} has no {CODE_LAYER!r} layer; is it an autoencoder?")
    start = names.index(latent) + 1
    inputs = x = keras.Input(shape=model.get_layer(latent).output.shape[1:], name="latent")
    for layer in model.layers[start:]:
        x = layer(x)
    return keras.Model(inputs, x, name="decoder")


ARCHITECTURE = declare(Architecture(spec=AutoencoderSpec, build=build_autoencoder, reconstructs_input=True))
