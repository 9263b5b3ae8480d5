"""Residual network of basic blocks (two 3x3 conv-BN, shortcut, add, ReLU), sized for small images.

Stem: 3x3 conv (``width`` filters)-BN-ReLU, no pooling. Stage ``i`` has ``stages[i]`` blocks with
``width * 2**i`` filters. Shortcuts are the identity inside a stage and a projection (1x1 conv + BN) where the
shape changes: at the first block of every stage after the first, which also downsamples (stride 2).
Head: global average pooling -> dropout -> dense head.

Fully convolutional variant (default when ``output_shape`` is a field with the input's H and W): no
downsampling anywhere (projections are then 1x1 stride 1, used only where the width changes) and a 1x1 conv
head instead of pooling + Dense.

Layer names: ``stem_*``, ``stage{i}_block{j}_{conv1,bn1,relu1,conv2,bn2,shortcut,shortcut_bn,add,out}``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.cnn import conv_head, image_input, resolve_fully_convolutional
from spark_ml_pipeline.train.models.mlp import BN_MOMENTUM, ShapeLike, SpecBase, as_shape, check_activation, dense_head

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


class ResNetSpec(SpecBase):
    kind: Literal["resnet"] = "resnet"
    stages: list[PositiveInt] = Field([2, 2, 2], min_length=1)  # basic blocks per stage (depth)
    width: PositiveInt = 16  # filters of the stem and first stage; doubled at each later stage
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # before the dense head (classifier variant only)
    # None: fully convolutional iff output_shape is (H, W) or (H, W, C) with the input's H and W.
    fully_convolutional: Optional[bool] = None


def basic_block(x, filters: int, strides: int, name: str):
    from tensorflow import keras

    layers = keras.layers
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_shortcut")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def build_resnet(spec: ResNetSpec, input_shape: ShapeLike, output_shape: ShapeLike,
                 output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    output_shape = as_shape(output_shape, "output_shape")
    output_activation = check_activation(output_activation)
    fully_conv = resolve_fully_convolutional(spec.fully_convolutional, input_shape, output_shape)
    inputs, x = image_input(input_shape)
    x = keras.layers.Conv2D(spec.width, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for i, blocks in enumerate(spec.stages):
        filters = spec.width * 2 ** i
        for j in range(blocks):
            strides = 2 if (i > 0 and j == 0 and not fully_conv) else 1
            x = basic_block(x, filters, strides, name=f"stage{i}_block{j}")
    if fully_conv:
        outputs = conv_head(x, output_shape, output_activation)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name="head_dropout")(x)
        outputs = dense_head(x, output_shape, output_activation)
    return keras.Model(inputs, outputs, name="resnet")


ARCHITECTURE = declare(Architecture(spec=ResNetSpec, build=build_resnet))
