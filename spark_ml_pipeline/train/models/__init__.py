"""Keras model zoo: typed specs and constructor functions (no compile, no training loop).

>>> spec = parse_spec({"kind": "cnn", "filters": [16, 32], "dense": [64]})
>>> model = build_model(spec, input_shape=(28, 28), output_shape=(10,), output_activation="softmax")

Importing this package does not import TensorFlow; building a model does.
"""
from spark_ml_pipeline.train.models.autoencoder import AutoencoderSpec, build_autoencoder, encoder_of
from spark_ml_pipeline.train.models.cnn import CNNSpec, build_cnn
from spark_ml_pipeline.train.models.mlp import MLPSpec, build_mlp
from spark_ml_pipeline.train.models.recurrent import LSTMSpec, build_lstm
from spark_ml_pipeline.train.models.resnet import ResNetSpec, build_resnet
from spark_ml_pipeline.train.models.zoo import MODEL_SPEC, ModelSpec, build_model, parse_spec

__all__ = [
    "AutoencoderSpec", "CNNSpec", "LSTMSpec", "MLPSpec", "MODEL_SPEC", "ModelSpec", "ResNetSpec",
    "build_autoencoder", "build_cnn", "build_lstm", "build_mlp", "build_model", "build_resnet", "encoder_of",
    "parse_spec",
]
