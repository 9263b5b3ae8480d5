"""Fully connected network, plus the pieces every architecture shares: the spec base class, shape
normalisation and the dense output head.

TensorFlow is imported inside the build functions only, so specs can be validated (e.g. on the Spark driver,
while reading a pipeline config) without the ``dl`` extra installed.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

# Hidden-layer activations accepted by the specs (all are built-in Keras activation names).
Activation = Literal["relu", "gelu", "elu", "selu", "swish", "tanh", "sigmoid", "leaky_relu", "linear"]
ShapeLike = Union[int, Sequence[int]]


# Moving statistics of batch norm follow the batches faster than Keras' default 0.99: with the few
# hundred steps of a short data-parallel run, 0.99 leaves inference statistics far from the data's.
BN_MOMENTUM = 0.9


class SpecBase(BaseModel):
    """Base of every architecture spec: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class MLPSpec(SpecBase):
    """Multi-layer perceptron. Any input shape is flattened first."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[PositiveInt] = [128, 64]  # units of each hidden Dense layer; [] gives a linear/logistic model
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # after every hidden layer (0 = no Dropout layer)
    batch_norm: bool = False  # Dense -> BatchNormalization -> activation


def as_shape(shape: ShapeLike, what: str) -> tuple[int, ...]:
    """``10`` -> ``(10,)``; checks every dimension is a positive int."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ValueError(f"{what} must be a non-empty tuple of positive ints, got {shape!r}")
    return dims


def check_activation(name: Optional[str]) -> Optional[str]:
    """Fail at build time (not at first fit) on an unknown output activation."""
    from tensorflow import keras

    if name is not None:
        keras.activations.get(name)  # raises ValueError for unknown names
    return name


def dense_head(x: "keras.KerasTensor", output_shape: tuple[int, ...], activation: Optional[str]):
    """The generic head: ``Dense(prod(output_shape))``, reshaped when ``output_shape`` has rank > 1.

    For a field the activation is applied after the reshape, so e.g. ``softmax`` on ``(T, C)`` is per row.
    The output layer is always named ``output`` and computes in float32 (safe under mixed precision).
    """
    from tensorflow import keras

    if len(output_shape) == 1:
        return keras.layers.Dense(output_shape[0], activation=activation, dtype="float32", name="output")(x)
    x = keras.layers.Dense(math.prod(output_shape), dtype="float32", name="head")(x)
    x = keras.layers.Reshape(output_shape, dtype="float32", name="head_reshape")(x)
    return keras.layers.Activation(activation or "linear", dtype="float32", name="output")(x)


def dense_stack(x, units: Sequence[int], activation: str, dropout: float, batch_norm: bool, prefix: str):
    """Dense(-BN)-activation(-Dropout) for each entry of ``units``."""
    from tensorflow import keras

    for i, n in enumerate(units):
        x = keras.layers.Dense(n, use_bias=not batch_norm, name=f"{prefix}{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}{i}_bn")(x)
        x = keras.layers.Activation(activation, name=f"{prefix}{i}_{activation}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}{i}_dropout")(x)
    return x


def build_mlp(spec: MLPSpec, input_shape: ShapeLike, output_shape: ShapeLike,
              output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    input_shape, output_shape = as_shape(input_shape, "input_shape"), as_shape(output_shape, "output_shape")
    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    x = dense_stack(x, spec.hidden, spec.activation, spec.dropout, spec.batch_norm, prefix="dense")
    outputs = dense_head(x, output_shape, check_activation(output_activation))
    return keras.Model(inputs, outputs, name="mlp")


ARCHITECTURE = declare(Architecture(spec=MLPSpec, build=build_mlp))
