"""Token-sequence model: Embedding -> stack of (Bidirectional) LSTMs -> dense head.

Input: ``(sequence_length,)`` int32 token ids, with index 0 = padding and 1 = out-of-vocabulary, so real
tokens start at 2 and ``vocab_size`` counts both reserved ids. With ``mask_zero`` (default) padded steps are
skipped. Pad at the end ("post" padding): TensorFlow's cuDNN LSTM kernel on GPU requires right-padded masks.
Every LSTM but the last returns sequences; the last one's final state feeds the head (sequence-level output).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.mlp import ShapeLike, SpecBase, as_shape, check_activation, dense_head

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

PAD, OOV = 0, 1


class LSTMSpec(SpecBase):
    kind: Literal["lstm", "bilstm"] = "lstm"  # bilstm wraps every LSTM in Bidirectional (concat)
    vocab_size: int = Field(..., ge=3)  # including the padding (0) and out-of-vocabulary (1) ids
    embedding_dim: PositiveInt = 64
    units: PositiveInt = 64  # per direction
    layers: PositiveInt = 1
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # LSTM input dropout (no recurrent dropout: keeps cuDNN)
    mask_zero: bool = True


def build_lstm(spec: LSTMSpec, input_shape: ShapeLike, output_shape: ShapeLike,
               output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    input_shape, output_shape = as_shape(input_shape, "input_shape"), as_shape(output_shape, "output_shape")
    if len(input_shape) != 1:
        raise ValueError(f"sequence models need input_shape (sequence_length,), got {input_shape}")
    inputs = keras.Input(shape=input_shape, dtype="int32", name="input")
    x = keras.layers.Embedding(spec.vocab_size, spec.embedding_dim, mask_zero=spec.mask_zero,
                               name="embedding")(inputs)
    for i in range(spec.layers):
        lstm = keras.layers.LSTM(spec.units, dropout=spec.dropout, return_sequences=i < spec.layers - 1,
                                 name=f"lstm{i}")
        if spec.kind == "bilstm":
            lstm = keras.layers.Bidirectional(lstm, name=f"bilstm{i}")
        x = lstm(x)
    outputs = dense_head(x, output_shape, check_activation(output_activation))
    return keras.Model(inputs, outputs, name=spec.kind)
