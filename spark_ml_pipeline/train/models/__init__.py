"""Keras model zoo: typed specs and constructor functions (no compile, no training loop).

>>> spec = parse_spec({"kind": "cnn", "filters": [16, 32], "dense": [64]})
>>> model = build_model(spec, input_shape=(28, 28), output_shape=(10,), output_activation="softmax")

Each architecture is a module of this package that declares itself (:mod:`.architecture`); its spec class and
builder are reached through its module or, by ``kind``, through :func:`architecture_of`. Importing this package
does not import TensorFlow; building a model does.
"""
from spark_ml_pipeline.train.models.architecture import Architecture, architecture_of, architectures, declare
from spark_ml_pipeline.train.models.loading import UnsafeModelError, check_keras_file, load_keras_model
from spark_ml_pipeline.train.models.own_layers import OwnLayers
from spark_ml_pipeline.train.models.zoo import ModelSpec, build_model, parse_spec

__all__ = [
    "Architecture", "ModelSpec", "OwnLayers", "UnsafeModelError", "architecture_of", "architectures",
    "build_model", "check_keras_file", "declare", "load_keras_model", "parse_spec",
]
