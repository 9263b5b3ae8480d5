"""The ``fashion_autoencoder`` pipeline, declared here once and found by name:
a convolutional autoencoder on Fashion-MNIST whose codes become a feature table."""
from pipelines.fashion_autoencoder.pipeline import NAME, FashionAutoencoderConfig
from spark_ml_pipeline.runtime.discovery import whole_run_pipeline

PIPELINE = whole_run_pipeline(
    NAME, FashionAutoencoderConfig, "pipelines.fashion_autoencoder.pipeline",
    description="a convolutional autoencoder on Fashion-MNIST whose codes become a feature table")
