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
trainer compiles them with Horovod's optimizer. Built-in Keras layers are used, plus the architectures' own
declared layers (the FNO's, the transformer's, the VAE's sampling layer), so ``model.save("m.keras")`` /
``load_keras_model("m.keras")`` (:mod:`.loading`: safe mode) need no ``custom_objects``.

The zoo names no architecture: each module of this package declares its own (:mod:`.architecture`), and the
spec union and the builders are read from those declarations.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Optional, Union

from pydantic import Field, TypeAdapter

from spark_ml_pipeline.train.models.architecture import architecture_of, architectures
from spark_ml_pipeline.train.models.mlp import ShapeLike

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


def spec_union(specs: tuple[type, ...]) -> Any:
    """The discriminated union (on ``kind``) of ``specs``: what a pipeline config's ``model`` field parses."""
    return Annotated[Union[specs], Field(discriminator="kind")]


def declared_specs() -> tuple[type, ...]:
    """The spec class of every declared architecture, once each, in the order of their kinds."""
    return tuple(dict.fromkeys(architecture.spec for architecture in architectures().values()))


# Every architecture this package declares (a pydantic field type: fixed when a config class is defined).
ModelSpec = spec_union(declared_specs())


@functools.lru_cache(maxsize=None)
def _adapter(specs: tuple[type, ...]) -> TypeAdapter:
    return TypeAdapter(spec_union(specs))


def parse_spec(data: Union[Mapping[str, Any], ModelSpec]) -> ModelSpec:
    """Validate a dict (e.g. from YAML) into the spec class named by its ``kind``; specs pass through.
    Knows every architecture declared so far (this package's and any declared since, e.g. a test's)."""
    return _adapter(declared_specs()).validate_python(data)


def build_model(spec: Union[ModelSpec, Mapping[str, Any]], input_shape: ShapeLike,
                output_shape: Optional[ShapeLike] = None,
                output_activation: Optional[str] = None) -> "keras.Model":
    """Build the (uncompiled) model described by ``spec`` for per-sample ``input_shape``.

    ``output_shape`` is required except for architectures that reconstruct their input (autoencoders); see the
    module docstring for the head rules.
    """
    spec = parse_spec(spec)
    architecture = architecture_of(spec)
    if output_shape is None and not architecture.reconstructs_input:
        raise ValueError(f"output_shape is required for a {spec.kind!r} model")
    return architecture.build(spec, input_shape, output_shape, output_activation)
