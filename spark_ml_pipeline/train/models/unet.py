"""U-Net: an encoder-decoder of convolutions with skip connections, for field-to-field surrogates.

Why it is in the zoo: the steady-state Darcy solution at a point depends on the coefficient over the whole
domain, but a stack of 3x3 convolutions only sees a neighbourhood (4 layers: 9x9 of a 16x16 field). The
U-Net halves the grid ``levels`` times (16 -> 8 -> 4 -> 2), so its bottleneck sees everything, and the
decoder brings the global context back to full resolution, concatenated with the encoder's features of
the same level (the skips keep the local detail).

Level ``i`` has ``width * 2**i`` filters and ``convs_per_level`` 3x3 conv-(BN)-activation layers;
downsampling is 2x2 max pooling; upsampling a 2x2 transposed convolution. Built-in Keras layers only.
H and W must be divisible by ``2**levels``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.cnn import conv_bn_act, conv_head, image_input
from spark_ml_pipeline.train.models.mlp import Activation, ShapeLike, SpecBase, as_shape, check_activation

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


class UNetSpec(SpecBase):
    kind: Literal["unet"] = "unet"
    width: PositiveInt = 32  # filters at full resolution; doubled at every level down
    levels: int = Field(3, ge=1, le=6)  # times the grid is halved
    convs_per_level: int = Field(2, ge=1, le=4)
    activation: Activation = "gelu"
    batch_norm: bool = False


def build_unet(spec: UNetSpec, input_shape: ShapeLike, output_shape: ShapeLike,
               output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    layers = keras.layers
    output_shape = as_shape(output_shape, "output_shape")
    output_activation = check_activation(output_activation)
    height, width = as_shape(input_shape, "input_shape")[:2]
    if output_shape[:2] != (height, width):
        raise ValueError(f"a U-Net predicts a field on its input's grid {(height, width)}; got output_shape "
                         f"{output_shape}")
    if height % 2 ** spec.levels or width % 2 ** spec.levels:
        raise ValueError(f"a U-Net with {spec.levels} levels needs H and W divisible by {2 ** spec.levels}, "
                         f"got {(height, width)}")
    inputs, x = image_input(input_shape)

    def block(x, filters: int, name: str):
        for k in range(spec.convs_per_level):
            x = conv_bn_act(x, filters, 3, spec.activation, spec.batch_norm, name=f"{name}_{k}")
        return x

    skips = []
    for level in range(spec.levels):
        x = block(x, spec.width * 2 ** level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = block(x, spec.width * 2 ** spec.levels, "bottleneck")
    for level in reversed(range(spec.levels)):
        filters = spec.width * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = block(x, filters, f"up{level}")
    return keras.Model(inputs, conv_head(x, output_shape, output_activation), name="unet")


ARCHITECTURE = declare(Architecture(spec=UNetSpec, build=build_unet))
