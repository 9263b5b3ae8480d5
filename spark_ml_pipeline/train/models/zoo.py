"""The model zoo's single entry point: a typed spec (discriminated on ``kind``) -> an uncompiled Keras model.

Head API -- ``output_shape`` says what the model predicts:

* ``(10,)`` (or just ``10``): a vector, e.g. 10-class ``softmax`` or a scalar regression with ``(1,)``;
* ``(16, 16)`` or ``(16, 16, 1)``: a field. Image models whose input has the same H x W (e.g. the Darcy
  surrogate, 16x16 coefficient map -> 16x16 solution) are fully convolutional by default and end in a 1x1
  conv; otherwise (MLP, LSTM, or ``fully_convolutional: false``) a Dense of ``prod(output_shape)`` units is
  reshaped to ``output_shape``;
* ``unet`` predicts a field on its input's grid (encoder-decoder with skips, for surrogates);
* ``fno`` (Fourier neural operator) too, on any grid for (H, W, C) inputs: trained on one resolution, it
  predicts on another;
* sequence models (``lstm``/``bilstm`` with an LSTM, GRU or SimpleRNN ``cell``; ``transformer``) take
  ``(sequence_length,)`` token ids (0 = padding, masked) and predict per sequence through the dense head;
* autoencoders reconstruct their input: ``output_shape`` may be None and must otherwise equal ``input_shape``;
  so does the variational autoencoder (``vae``: Gaussian latent, KL term in the model's losses).

``output_activation`` (None = linear) is applied to the output; the output layer is named ``output``
(``reconstruction`` for autoencoders) and computes in float32. Models are *not* compiled: the distributed
trainer compiles them with Horovod's optimizer. Built-in Keras layers are used, plus the FNO's
two registered layers (:mod:`.spectral`), the transformer's two (:mod:`.attention`) and the VAE's sampling
layer (:mod:`.variational`), so ``model.save("m.keras")`` / ``load_keras_model("m.keras")`` (:mod:`.loading`:
safe mode) need no ``custom_objects``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Callable, Mapping, Optional, Union

from pydantic import Field, TypeAdapter

from spark_ml_pipeline.train.models.attention import TransformerSpec, build_transformer
from spark_ml_pipeline.train.models.autoencoder import AutoencoderSpec, build_autoencoder
from spark_ml_pipeline.train.models.cnn import CNNSpec, build_cnn
from spark_ml_pipeline.train.models.mlp import MLPSpec, ShapeLike, build_mlp
from spark_ml_pipeline.train.models.recurrent import LSTMSpec, build_lstm
from spark_ml_pipeline.train.models.resnet import ResNetSpec, build_resnet
from spark_ml_pipeline.train.models.spectral import FNOSpec, build_fno
from spark_ml_pipeline.train.models.unet import UNetSpec, build_unet
from spark_ml_pipeline.train.models.variational import VAESpec, build_vae

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras

ModelSpec = Annotated[Union[MLPSpec, CNNSpec, ResNetSpec, UNetSpec, FNOSpec, LSTMSpec, TransformerSpec,
                            AutoencoderSpec, VAESpec], Field(discriminator="kind")]
MODEL_SPEC: TypeAdapter = TypeAdapter(ModelSpec)

BUILDERS: dict[str, Callable[..., "keras.Model"]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "resnet": build_resnet,
    "unet": build_unet,
    "fno": build_fno,
    "lstm": build_lstm,
    "bilstm": build_lstm,
    "transformer": build_transformer,
    "autoencoder": build_autoencoder,
    "vae": build_vae,
}
RECONSTRUCTING = frozenset({"autoencoder", "vae"})  # kinds whose output is their input's reconstruction


def parse_spec(data: Union[Mapping[str, Any], ModelSpec]) -> ModelSpec:
    """Validate a dict (e.g. from YAML) into the spec class named by its ``kind``; specs pass through."""
    return MODEL_SPEC.validate_python(data)


def build_model(spec: Union[ModelSpec, Mapping[str, Any]], input_shape: ShapeLike,
                output_shape: Optional[ShapeLike] = None,
                output_activation: Optional[str] = None) -> "keras.Model":
    """Build the (uncompiled) model described by ``spec`` for per-sample ``input_shape``.

    ``output_shape`` is required except for autoencoders (and VAEs); see the module docstring for the head rules.
    """
    spec = parse_spec(spec)
    if output_shape is None and spec.kind not in RECONSTRUCTING:
        raise ValueError(f"output_shape is required for a {spec.kind!r} model")
    return BUILDERS[spec.kind](spec, input_shape, output_shape, output_activation)
