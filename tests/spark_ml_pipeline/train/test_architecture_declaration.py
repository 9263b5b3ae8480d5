"""A new architecture is one declaration: this module adds a toy one (with its own Keras layer) without touching a
library file, and the zoo parses it from a config dict, builds and trains it, the safe loader loads it back and
its capabilities are seen. The library's own architectures are declared the same way (no Spark)."""
from __future__ import annotations

import json
import zipfile
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, PositiveInt

from spark_ml_pipeline.train.models.architecture import Architecture, architecture_of, architectures, declare
from spark_ml_pipeline.train.models.loading import UnsafeModelError, check_keras_file, load_keras_model
from spark_ml_pipeline.train.models.mlp import SpecBase, as_shape
from spark_ml_pipeline.train.models.own_layers import OwnLayers
from spark_ml_pipeline.train.models.zoo import build_model, declared_specs, parse_spec, spec_union

keras = pytest.importorskip("tensorflow").keras


# --- the toy architecture: everything a new module of the zoo would hold -------------------------------------
class ToySpec(SpecBase):
    kind: Literal["toy_autoencoder"] = "toy_autoencoder"
    code_size: PositiveInt = 4


def _define_layers() -> list[type]:
    import tensorflow as tf

    class LearnedScale(keras.layers.Layer):
        """x -> x * s with one learned scalar s (a layer Keras does not have)."""

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
            super().build(input_shape)

        def call(self, inputs):
            return inputs * tf.cast(self.scale, inputs.dtype)

    return [LearnedScale]


OWN_LAYERS = OwnLayers(_define_layers, names=("LearnedScale",))


def build_toy(spec: ToySpec, input_shape, output_shape=None, output_activation=None):
    input_shape = as_shape(input_shape, "input_shape")
    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(spec.code_size, name="code")(x)
    x = keras.layers.Dense(int(np.prod(input_shape)), activation=output_activation or "sigmoid")(x)
    x = OWN_LAYERS.classes()["LearnedScale"](name="scale")(x)
    outputs = keras.layers.Reshape(input_shape, dtype="float32", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="toy_autoencoder")


ARCHITECTURE = declare(Architecture(spec=ToySpec, build=build_toy, own_layers=OWN_LAYERS, reconstructs_input=True))
# ---------------------------------------------------------------------------------------------------------------


def test_a_declared_toy_architecture_is_parsed_built_trained_saved_and_loaded_safely(tmp_path):
    config = {"kind": "toy_autoencoder", "code_size": 3}
    spec = parse_spec(config)
    assert isinstance(spec, ToySpec) and spec.code_size == 3

    class PipelineSection(BaseModel):  # a config model whose union is generated from the declarations
        model: spec_union(declared_specs())

    assert PipelineSection.model_validate({"model": config}).model == spec
    assert isinstance(PipelineSection.model_validate({"model": {"kind": "mlp"}}).model, SpecBase)

    # Its capabilities, as the zoo and the pipelines see them: a reconstruction needs no output_shape.
    declared = architecture_of(spec)
    assert declared is ARCHITECTURE and architectures()["toy_autoencoder"] is ARCHITECTURE
    assert declared.reconstructs_input and not (declared.resolution_free or declared.token_input or declared.variational)
    keras.utils.set_random_seed(0)
    model = build_model(config, (6, 6))
    assert model.output_shape == (None, 6, 6)

    x = np.random.default_rng(0).random((8, 6, 6), dtype=np.float32)
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, x, batch_size=4, epochs=1, verbose=0)  # two steps
    assert np.isfinite(history.history["loss"][0])
    assert model.get_layer("scale").get_weights()[0] != 1.0  # the own layer trained

    path = tmp_path / "toy.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    scale = next(layer for layer in layers if layer["class_name"] == "LearnedScale")
    assert (scale["registered_name"], scale["module"]) == ("spark_ml_pipeline>LearnedScale", __name__)
    check_keras_file(str(path))  # a module outside Keras, allowed for its layer: the declaration vouches for it
    reloaded = load_keras_model(str(path))
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_an_undeclared_custom_layer_is_still_refused(tmp_path):
    """The safe loader allows declared layers only: a registered layer no architecture declares is refused."""

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Undeclared(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    inputs = keras.Input((3,))
    path = tmp_path / "undeclared.keras"
    keras.Model(inputs, Undeclared(name="undeclared")(inputs)).save(path)
    with pytest.raises(UnsafeModelError, match=r"undeclared names module .* \(only Keras' own are loaded\)"):
        load_keras_model(str(path))


def test_the_library_declares_each_kind_once_with_its_capabilities():
    declared = architectures()
    library = {kind for kind, architecture in declared.items() if architecture.spec.__module__.startswith(
        "spark_ml_pipeline.")}
    assert library == {"autoencoder", "bilstm", "cnn", "fno", "lstm", "mlp", "resnet", "transformer", "unet", "vae"}
    assert declared["lstm"] is declared["bilstm"]  # one spec, two kinds
    assert {kind for kind in library if declared[kind].reconstructs_input} == {"autoencoder", "vae"}
    assert {kind for kind in library if declared[kind].resolution_free} == {"fno"}
    assert {kind for kind in library if declared[kind].token_input} == {"bilstm", "lstm", "transformer"}
    assert {kind for kind in library if declared[kind].variational} == {"vae"}
    own = {kind: sorted(declared[kind].own_layers.names) for kind in library if declared[kind].own_layers}
    assert own == {"fno": ["SpectralConv2D", "SquareSymmetries", "SqueezeChannel", "SymmetryAverage"],
                   "transformer": ["MaskedPooling1D", "PositionEmbedding"], "vae": ["GaussianSampling"]}


def test_a_kind_cannot_be_declared_by_two_specs():
    class Impostor(SpecBase):
        kind: Literal["mlp"] = "mlp"

    with pytest.raises(ValueError, match="kind 'mlp' is declared twice"):
        declare(Architecture(spec=Impostor, build=build_toy))
    with pytest.raises(ValueError, match="unknown model kind 'nope'"):
        architecture_of("nope")
