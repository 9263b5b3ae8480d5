"""Token-sequence model: Embedding -> stack of (Bidirectional) recurrent layers -> dense head.

Input: ``(sequence_length,)`` int32 token ids, with index 0 = padding and 1 = out-of-vocabulary, so real
tokens start at 2 and ``vocab_size`` counts both reserved ids. With ``mask_zero`` (default) padded steps are
skipped. Pad at the end ("post" padding): TensorFlow's cuDNN LSTM and GRU kernels on GPU require right-padded
masks. Every recurrent layer but the last returns sequences; the last one's final state feeds the head
(sequence-level output).

``cell`` picks the recurrent layer: ``lstm`` (default), ``gru`` (fewer weights, often as good on short texts) or
``rnn`` (``SimpleRNN``: a baseline, forgets over long spans); ``kind: bilstm`` wraps whichever in Bidirectional,
so ``{kind: bilstm, cell: gru}`` is a bidirectional GRU. Layers are named ``<cell><i>`` (``bi<cell><i>`` for the
wrapper) and the model ``[bi]<cell>``: an LSTM's names are unchanged by the ``cell`` option.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, declare
from spark_ml_pipeline.train.models.mlp import ShapeLike, SpecBase, as_shape, check_activation, dense_head

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

PAD, OOV = 0, 1
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}  # cell -> Keras layer class


class LSTMSpec(SpecBase):
    kind: Literal["lstm", "bilstm"] = "lstm"  # bilstm wraps every recurrent layer in Bidirectional (concat)
    cell: Literal["lstm", "gru", "rnn"] = "lstm"  # LSTM, GRU or SimpleRNN layers
    vocab_size: int = Field(..., ge=3)  # including the padding (0) and out-of-vocabulary (1) ids
    embedding_dim: PositiveInt = 64
    units: PositiveInt = 64  # per direction
    layers: PositiveInt = 1
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # input dropout (no recurrent dropout: keeps cuDNN)
    mask_zero: bool = True



def build_lstm(spec: LSTMSpec, input_shape: ShapeLike, output_shape: ShapeLike,
               output_activation: Optional[str] = None) -> "keras.Model":
    from tensorflow import keras

    input_shape, output_shape = as_shape(input_shape, "input_shape"), as_shape(output_shape, "output_shape")
    if len(input_shape) != 1:
        raise ValueError(f"sequence models need input_shape (sequence_length,), got {input_shape}")
    bidirectional = spec.kind == "bilstm"
    layer_class = getattr(keras.layers, CELLS[spec.cell])
    inputs = keras.Input(shape=input_shape, dtype="int32", name="input")
    x = keras.layers.Embedding(spec.vocab_size, spec.embedding_dim, mask_zero=spec.mask_zero,
                               name="embedding")(inputs)
    for i in range(spec.layers):
        layer = layer_class(spec.units, dropout=spec.dropout, return_sequences=i < spec.layers - 1,
                            name=f"{spec.cell}{i}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bi{spec.cell}{i}")
        x = layer(x)
    outputs = dense_head(x, output_shape, check_activation(output_activation))
    return keras.Model(inputs, outputs, name=f"bi{spec.cell}" if bidirectional else spec.cell)


ARCHITECTURE = declare(Architecture(spec=LSTMSpec, build=build_lstm, token_input=True))
