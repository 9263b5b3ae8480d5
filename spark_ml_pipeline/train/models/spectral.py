"""Fourier neural operator (FNO, Li et al. 2021): spectral convolutions that see the whole field at once.

Why it is in the zoo: a Darcy solution at a point depends on the coefficient over the whole domain. A spectral
convolution multiplies the lowest ``modes`` Fourier modes of its input by learned complex weights, so one layer
is global, and its weights do not depend on the grid: the same model predicts on a finer grid than it was
trained on (resolution transfer). The model's input has no fixed height and width for that reason.

Block: ``act(SpectralConv2D(x) + Conv1x1(x))``; lifting 1x1 conv to ``width`` channels first, projection
1x1 conv (``projection`` channels) -> 1x1 conv to the output channels last. ``padding`` zero-pads the bottom and
right before the blocks and crops it after (the FFT assumes a periodic field; Darcy's is not). Padding is in
grid points, so it is not resolution-free: a model meant to predict on other grids keeps it at 0.

``symmetric: true`` makes the model's predictions exactly equivariant under the square's 8 symmetries
(:mod:`.square_symmetry`: a transposition and the reflections ``i -> -i`` of the periodic grid the FFT assumes):
in inference the input field is transformed 8 ways (only its first ``symmetric_channels`` channels: grid
coordinates stay), each predicted, transformed back and averaged; in training the model sees one example at a
time, so it costs nothing there (train it with ``training.augment=dihedral``, which draws the same symmetries).
Inference costs 8x.

``SpectralConv2D``, ``SqueezeChannel``, ``SquareSymmetries`` and ``SymmetryAverage`` are this module's own layers
(:mod:`.own_layers`): registered with Keras under the ``spark_ml_pipeline`` package, and allowed by name in
:mod:`.loading`'s safe loader.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.cnn import conv_head
from spark_ml_pipeline.train.models.mlp import Activation, ShapeLike, SpecBase, as_shape, check_activation
from spark_ml_pipeline.train.models.own_layers import OwnLayers
from spark_ml_pipeline.train.models.square_symmetry import ELEMENTS, square_symmetry

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


class FNOSpec(SpecBase):
    kind: Literal["fno"] = "fno"
    width: PositiveInt = 32  # channels of every spectral block
    modes: PositiveInt = 8  # Fourier modes kept per axis (at most H / 2 and W / 2 + 1 of the grid)
    blocks: int = Field(4, ge=1, le=8)
    projection: PositiveInt = 128  # channels of the 1x1 layer before the output
    padding: int = Field(0, ge=0, le=16)  # zero rows/columns added bottom-right for the FFT, cropped after
    activation: Activation = "gelu"
    symmetric: bool = False  # predictions averaged over the square's 8 symmetries (inference only; see above)
    symmetric_channels: Optional[PositiveInt] = None  # input channels the symmetries move; null: all


def _define_layers() -> list[type]:
    import tensorflow as tf
    from tensorflow import keras

    class SpectralConv2D(keras.layers.Layer):
        """Channels-last (B, H, W, C) -> (B, H, W, filters): the input's lowest ``modes`` x ``modes`` Fourier
        modes (positive and negative along H, the non-negative half along W) times complex weights, inverse
        FFT on the input's grid. Computes in float32."""

        def __init__(self, filters: int, modes: int, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.modes = int(filters), int(modes)

        def build(self, input_shape):
            channels = int(input_shape[-1])
            # As in the reference implementation: uniform in [0, 1 / (in * out)], real and imaginary parts.
            scale = 1.0 / (channels * self.filters)
            shape = (2, channels, self.filters, self.modes, self.modes)  # [low rows, high rows]
            # One initializer each: an unseeded Keras initializer returns the same values on every call.
            self.real = self.add_weight(name="real", shape=shape,
                                        initializer=keras.initializers.RandomUniform(0.0, scale))
            self.imag = self.add_weight(name="imag", shape=shape,
                                        initializer=keras.initializers.RandomUniform(0.0, scale))
            super().build(input_shape)

        def call(self, inputs):
            x = tf.transpose(tf.cast(inputs, tf.float32), [0, 3, 1, 2])  # FFT over the last two axes
            batch, height, width = tf.shape(x)[0], tf.shape(x)[2], tf.shape(x)[3]
            m = self.modes
            tf.debugging.assert_less_equal(2 * m, height, message="SpectralConv2D: modes > H / 2 of the grid")
            tf.debugging.assert_less_equal(m, width // 2 + 1, message="SpectralConv2D: modes > W / 2 + 1")
            spectrum = tf.signal.rfft2d(x)  # (B, C, H, W // 2 + 1)
            weights = tf.complex(self.real, self.imag)
            low = tf.einsum("bixy,ioxy->boxy", spectrum[:, :, :m, :m], weights[0])
            high = tf.einsum("bixy,ioxy->boxy", spectrum[:, :, -m:, :m], weights[1])
            middle = tf.zeros(tf.stack([batch, self.filters, height - 2 * m, m]), dtype=low.dtype)
            kept = tf.concat([low, middle, high], axis=2)  # (B, O, H, m)
            rest = tf.zeros(tf.stack([batch, self.filters, height, width // 2 + 1 - m]), dtype=low.dtype)
            out = tf.signal.irfft2d(tf.concat([kept, rest], axis=3), fft_length=tf.stack([height, width]))
            return tf.transpose(out, [0, 2, 3, 1])

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self.filters)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "modes": self.modes}

    class SqueezeChannel(keras.layers.Layer):
        """(B, H, W, 1) -> (B, H, W) for any H and W (a Reshape needs them fixed)."""

        def call(self, inputs):
            return tf.squeeze(inputs, axis=-1)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape[:-1])

    class SquareSymmetries(keras.layers.Layer):
        """(B, H, W, C) -> (8B, H, W, C) in inference: the input under each of the square's 8 symmetries (the
        first ``channels`` channels moved, the rest kept); the input unchanged in training."""

        def __init__(self, channels: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.channels = None if channels is None else int(channels)

        def call(self, inputs, training=None):
            if training:
                return inputs
            moved = inputs.shape[-1] if self.channels is None else self.channels
            return tf.concat([tf.concat([square_symmetry(inputs[..., :moved], k), inputs[..., moved:]], axis=-1)
                              for k in range(ELEMENTS)], axis=0)

        def get_config(self):
            return {**super().get_config(), "channels": self.channels}

    class SymmetryAverage(keras.layers.Layer):
        """(8B, H, W[, C]) -> (B, H, W[, C]) in inference: each prediction transformed back by its symmetry's
        inverse, then averaged; the input unchanged in training."""

        def call(self, inputs, training=None):
            if training:
                return inputs
            fields = inputs if inputs.shape.rank == 4 else inputs[..., None]
            parts = tf.split(fields, ELEMENTS, axis=0)
            average = tf.add_n([square_symmetry(part, k, inverse=True) for k, part in enumerate(parts)]) / ELEMENTS
            return average if inputs.shape.rank == 4 else average[..., 0]

    return [SpectralConv2D, SqueezeChannel, SquareSymmetries, SymmetryAverage]


OWN_LAYERS = OwnLayers(_define_layers, names=("SpectralConv2D", "SqueezeChannel", "SquareSymmetries",
                                              "SymmetryAverage"))


def build_fno(spec: FNOSpec, input_shape: ShapeLike, output_shape: ShapeLike,
              output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    input_shape, output_shape = as_shape(input_shape, "input_shape"), as_shape(output_shape, "output_shape")
    output_activation = check_activation(output_activation)
    if len(input_shape) not in (2, 3) or len(output_shape) not in (2, 3) or output_shape[:2] != input_shape[:2]:
        raise ValueError(f"an FNO maps a field to a field on the same grid: input (H, W[, C]), output (H, W[, C]); "
                         f"got {input_shape} -> {output_shape}")
    height, width = input_shape[0] + spec.padding, input_shape[1] + spec.padding
    if 2 * spec.modes > height or spec.modes > width // 2 + 1:
        raise ValueError(f"fno modes={spec.modes} needs a (padded) grid of at least {2 * spec.modes} x "
                         f"{2 * spec.modes - 2}, got {height} x {width}")
    channels = input_shape[2] if len(input_shape) == 3 else 1
    if spec.symmetric and (input_shape[0] != input_shape[1] or (spec.symmetric_channels or 0) > channels):
        raise ValueError(f"fno symmetric=true needs a square grid and symmetric_channels <= the input's {channels} "
                         f"channel(s); got input {input_shape}, symmetric_channels={spec.symmetric_channels}")
    own, layers = OWN_LAYERS.classes(), keras.layers
    if len(input_shape) == 3:  # any grid: the same model scores a finer one
        inputs = x = keras.Input(shape=(None, None, input_shape[2]), name="input")
    else:  # (H, W) data gets its channel axis from a Reshape, which needs the grid fixed
        inputs = keras.Input(shape=input_shape, name="input")
        x = layers.Reshape((*input_shape, 1), name="add_channel")(inputs)
    if spec.symmetric:
        x = own["SquareSymmetries"](spec.symmetric_channels, name="symmetries")(x)
    x = layers.Conv2D(spec.width, 1, name="lift")(x)
    if spec.padding:
        x = layers.ZeroPadding2D(((0, spec.padding), (0, spec.padding)), name="pad")(x)
    for block in range(spec.blocks):
        spectral = own["SpectralConv2D"](spec.width, spec.modes, name=f"block{block}_spectral")(x)
        pointwise = layers.Conv2D(spec.width, 1, name=f"block{block}_pointwise")(x)
        x = layers.Add(name=f"block{block}_add")([spectral, pointwise])
        if block < spec.blocks - 1:  # the last block is linear, as in the reference FNO
            x = layers.Activation(spec.activation, name=f"block{block}_{spec.activation}")(x)
    if spec.padding:
        x = layers.Cropping2D(((0, spec.padding), (0, spec.padding)), name="crop")(x)
    x = layers.Conv2D(spec.projection, 1, activation=spec.activation, name="project")(x)
    if len(output_shape) == 3:
        outputs = conv_head(x, output_shape, output_activation)
    else:  # conv_head's Reshape to (H, W) would fix the grid: squeeze the channel instead
        x = layers.Conv2D(1, 1, dtype="float32", name="head")(x)
        x = own["SqueezeChannel"](dtype="float32", name="head_squeeze")(x)
        outputs = layers.Activation(output_activation or "linear", dtype="float32", name="output")(x)
    if spec.symmetric:
        outputs = own["SymmetryAverage"](dtype="float32", name="symmetry_average")(outputs)
    return keras.Model(inputs, outputs, name="fno")


# Resolution-free: the spectral weights do not depend on the grid (see the module docstring).
ARCHITECTURE = declare(Architecture(spec=FNOSpec, build=build_fno, own_layers=OWN_LAYERS, resolution_free=True))
