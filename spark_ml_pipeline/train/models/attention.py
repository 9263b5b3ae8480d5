"""Transformer encoder for token sequences: token + learned position embeddings -> self-attention blocks ->
masked pooling -> dense head.

Input: ``(max_length,)`` int32 token ids, as for :mod:`.recurrent`: 0 = padding, 1 = out-of-vocabulary, real
tokens from 2, ``vocab_size`` counting both reserved ids. Padded steps are ignored everywhere: the token
``Embedding`` has ``mask_zero=True`` and its mask flows through the position embedding, the layer norms, the
residual ``Add`` layers and the dense ones; Keras 2's ``MultiHeadAttention`` turns the Keras masks of its query
and value into its attention mask (no query attends to a padded key), and the pooling averages (or takes the
maximum) over the non-padded steps only. A sequence therefore gives the same output whatever padding follows it,
and an all-padding sequence (a tweet with no token left after cleaning) gives the pooled vector 0, not NaN.

Block (pre-norm, as in GPT-2 / ViT; steadier than post-norm without a warm-up)::

    x = x + Dropout(MultiHeadAttention(LN(x), LN(x)))
    x = x + Dropout(Dense(embedding_dim)(Dense(units, activation)(LN(x))))

and a final LayerNormalization before the pooling. Each head has ``embedding_dim / heads`` dimensions.

``PositionEmbedding`` and ``MaskedPooling1D`` are this module's own layers (the built-in ones cannot do it: a
position table needs a ``tf.range``, i.e. a code-calling ``TFOpLambda`` the safe loader refuses, and
``GlobalAveragePooling1D`` divides by zero on an all-padding sequence). Like the FNO's layers (:mod:`.own_layers`)
they are registered with Keras under the ``spark_ml_pipeline`` package and allowed by name in :mod:`.loading`'s
safe loader.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.mlp import Activation, ShapeLike, SpecBase, as_shape, check_activation, dense_head
from spark_ml_pipeline.train.models.own_layers import OwnLayers

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


class TransformerSpec(SpecBase):
    kind: Literal["transformer"] = "transformer"
    vocab_size: int = Field(..., ge=3)  # including the padding (0) and out-of-vocabulary (1) ids
    embedding_dim: PositiveInt = 64  # the model's width (token and position embeddings, every block's output)
    heads: PositiveInt = 2  # attention heads per block; embedding_dim must be a multiple
    blocks: int = Field(2, ge=1, le=12)
    units: PositiveInt = 128  # hidden units of every block's feed-forward layer
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # on the embeddings, the attention weights and both residual branches
    activation: Activation = "gelu"  # of the feed-forward layer
    pooling: Literal["mean", "max"] = "mean"  # over the non-padded steps (no CLS token)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TransformerSpec":
        if self.embedding_dim % self.heads:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must be a multiple of heads ({self.heads})")
        return self


def _define_layers() -> list[type]:
    import tensorflow as tf
    from tensorflow import keras

    class PositionEmbedding(keras.layers.Layer):
        """(B, T, D) -> (B, T, D): adds a learned vector per position (a table of ``input_shape[1]`` rows, fixed at
        build). The input's mask passes through unchanged."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def build(self, input_shape):
            length, width = input_shape[-2], input_shape[-1]
            if length is None:
                raise ValueError("PositionEmbedding needs a fixed sequence length")
            # The token Embedding's default initializer (uniform in +-0.05): both start at the same scale.
            self.positions = self.add_weight(name="positions", shape=(int(length), int(width)),
                                             initializer="uniform")
            super().build(input_shape)

        def call(self, inputs):
            length = tf.shape(inputs)[-2]
            return inputs + tf.cast(self.positions[:length], inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    class MaskedPooling1D(keras.layers.Layer):
        """(B, T, D) -> (B, D): mean or maximum over the steps the mask keeps (all steps without a mask); 0 for a
        sequence the mask drops entirely. Consumes the mask."""

        def __init__(self, mode: str = "mean", **kwargs):
            super().__init__(**kwargs)
            if mode not in ("mean", "max"):
                raise ValueError(f"MaskedPooling1D mode must be 'mean' or 'max', got {mode!r}")
            self.mode = mode
            self.supports_masking = True

        def call(self, inputs, mask=None):
            if mask is None:
                mask = tf.ones(tf.shape(inputs)[:-1], dtype=tf.bool)
            keep = tf.cast(mask, tf.bool)[..., tf.newaxis]  # (B, T, 1)
            if self.mode == "mean":
                weights = tf.cast(keep, inputs.dtype)
                total = tf.reduce_sum(inputs * weights, axis=-2)
                return total / tf.maximum(tf.reduce_sum(weights, axis=-2), tf.cast(1, inputs.dtype))
            lowest = tf.cast(inputs.dtype.min, inputs.dtype)
            maximum = tf.reduce_max(tf.where(keep, inputs, lowest), axis=-2)
            return tf.where(tf.reduce_any(keep, axis=-2), maximum, tf.zeros_like(maximum))

        def compute_mask(self, inputs, mask=None):
            return None

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[-1])

        def get_config(self):
            return {**super().get_config(), "mode": self.mode}

    return [PositionEmbedding, MaskedPooling1D]


OWN_LAYERS = OwnLayers(_define_layers, names=("PositionEmbedding", "MaskedPooling1D"))


def build_transformer(spec: TransformerSpec, input_shape: ShapeLike, output_shape: ShapeLike,
                      output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    input_shape, output_shape = as_shape(input_shape, "input_shape"), as_shape(output_shape, "output_shape")
    if len(input_shape) != 1:
        raise ValueError(f"sequence models need input_shape (sequence_length,), got {input_shape}")
    output_activation = check_activation(output_activation)
    own, layers = OWN_LAYERS.classes(), keras.layers
    width = spec.embedding_dim
    inputs = keras.Input(shape=input_shape, dtype="int32", name="input")
    x = layers.Embedding(spec.vocab_size, width, mask_zero=True, name="embedding")(inputs)  # the padding mask
    x = own["PositionEmbedding"](name="position_embedding")(x)
    if spec.dropout:
        x = layers.Dropout(spec.dropout, name="embedding_dropout")(x)
    for block in range(spec.blocks):
        name = f"block{block}"
        y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_attention_norm")(x)
        y = layers.MultiHeadAttention(spec.heads, width // spec.heads, dropout=spec.dropout,
                                      name=f"{name}_attention")(y, y)
        if spec.dropout:
            y = layers.Dropout(spec.dropout, name=f"{name}_attention_dropout")(y)
        x = layers.Add(name=f"{name}_attention_add")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_feed_forward_norm")(x)
        y = layers.Dense(spec.units, activation=spec.activation, name=f"{name}_feed_forward")(y)
        y = layers.Dense(width, name=f"{name}_feed_forward_out")(y)
        if spec.dropout:
            y = layers.Dropout(spec.dropout, name=f"{name}_feed_forward_dropout")(y)
        x = layers.Add(name=f"{name}_feed_forward_add")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = own["MaskedPooling1D"](spec.pooling, name=f"masked_{spec.pooling}_pooling")(x)
    outputs = dense_head(x, output_shape, output_activation)
    return keras.Model(inputs, outputs, name="transformer")


ARCHITECTURE = declare(Architecture(spec=TransformerSpec, build=build_transformer, own_layers=OWN_LAYERS,
                                    token_input=True))
