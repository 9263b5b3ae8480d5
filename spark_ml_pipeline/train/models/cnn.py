"""Plain convolutional network, plus the image helpers the ResNet and the autoencoder share.

Two shapes of network, chosen by ``fully_convolutional``:

* classifier / regressor (default for vector outputs): conv blocks (conv-BN-act, ``convs_per_block`` times, then
  2x2 max pooling) -> Flatten -> ``dense`` layers -> dense head;
* fully convolutional (default when ``output_shape`` is a field with the input's height and width, e.g.
  16x16 coefficient map -> 16x16 solution): the same conv blocks without pooling ('same' padding keeps H x W),
  the ``dense`` layers become 1x1 convolutions, and a final 1x1 convolution gives the output channels.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.mlp import (BN_MOMENTUM, Activation, ShapeLike, SpecBase, as_shape, check_activation,
                                  dense_head, dense_stack)

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


class CNNSpec(SpecBase):
    kind: Literal["cnn"] = "cnn"
    filters: list[PositiveInt] = Field([32, 64], min_length=1)  # one conv block per entry
    kernel_size: PositiveInt = 3
    convs_per_block: int = Field(1, ge=1, le=3)  # conv-BN-act repeated this many times per block
    batch_norm: bool = True
    activation: Activation = "relu"
    dense: list[PositiveInt] = [128]  # hidden Dense layers (1x1 convs when fully convolutional)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # after each hidden dense / 1x1 layer
    # None: fully convolutional iff output_shape is (H, W) or (H, W, C) with the input's H and W.
    fully_convolutional: Optional[bool] = None


def image_input(input_shape: ShapeLike):
    """``keras.Input`` for (H, W) or (H, W, C) images; returns ``(inputs, x)`` with ``x`` always rank 3 per
    sample (a Reshape adds the channel axis for (H, W), so data can stay 2-D arrays)."""
    from tensorflow import keras

    shape = as_shape(input_shape, "input_shape")
    if len(shape) not in (2, 3):
        raise ValueError(f"image models need input_shape (H, W) or (H, W, C), got {shape}")
    inputs = keras.Input(shape=shape, name="input")
    x = keras.layers.Reshape(shape + (1,), name="add_channel")(inputs) if len(shape) == 2 else inputs
    return inputs, x


def resolve_fully_convolutional(option: Optional[bool], input_shape: ShapeLike,
                                output_shape: tuple[int, ...]) -> bool:
    """Apply the ``fully_convolutional`` rule: None = decide by output shape; True must be possible."""
    spatial = as_shape(input_shape, "input_shape")[:2]
    dense_prediction = len(output_shape) in (2, 3) and output_shape[:2] == spatial
    if option is None:
        return dense_prediction
    if option and not dense_prediction:
        raise ValueError(f"fully_convolutional needs output_shape (H, W) or (H, W, C) with the input's H, W = "
                         f"{spatial}, got {output_shape}")
    return option


def conv_head(x, output_shape: tuple[int, ...], activation: Optional[str]):
    """1x1 convolution to the output channels; reshaped to (H, W) for a rank-2 ``output_shape``."""
    from tensorflow import keras

    channels = output_shape[2] if len(output_shape) == 3 else 1
    if len(output_shape) == 3:
        return keras.layers.Conv2D(channels, 1, activation=activation, dtype="float32", name="output")(x)
    x = keras.layers.Conv2D(channels, 1, dtype="float32", name="head")(x)
    x = keras.layers.Reshape(output_shape, dtype="float32", name="head_reshape")(x)
    return keras.layers.Activation(activation or "linear", dtype="float32", name="output")(x)


def conv_bn_act(x, filters: int, kernel_size: int, activation: str, batch_norm: bool, name: str,
                strides: int = 1):
    from tensorflow import keras

    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm,
                            name=f"{name}_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def build_cnn(spec: CNNSpec, input_shape: ShapeLike, output_shape: ShapeLike,
              output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    output_shape = as_shape(output_shape, "output_shape")
    output_activation = check_activation(output_activation)
    fully_conv = resolve_fully_convolutional(spec.fully_convolutional, input_shape, output_shape)
    inputs, x = image_input(input_shape)
    for b, filters in enumerate(spec.filters):
        for c in range(spec.convs_per_block):
            x = conv_bn_act(x, filters, spec.kernel_size, spec.activation, spec.batch_norm, name=f"block{b}_{c}")
        if not fully_conv:
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{b}_pool")(x)
    if fully_conv:
        for i, n in enumerate(spec.dense):
            x = keras.layers.Conv2D(n, 1, activation=spec.activation, name=f"pointwise{i}")(x)
            if spec.dropout:
                x = keras.layers.Dropout(spec.dropout, name=f"pointwise{i}_dropout")(x)
        outputs = conv_head(x, output_shape, output_activation)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_stack(x, spec.dense, spec.activation, spec.dropout, batch_norm=False, prefix="dense")
        outputs = dense_head(x, output_shape, output_activation)
    return keras.Model(inputs, outputs, name="cnn")


ARCHITECTURE = declare(Architecture(spec=CNNSpec, build=build_cnn))
