"""The ``fashion_autoencoder`` pipeline, declared here once and found by name:
a convolutional autoencoder on Fashion-MNIST whose codes become a feature table."""
from pipelines.fashion_autoencoder import pipeline
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.FashionAutoencoderConfig,
    stages={"ingest": pipeline.ingest, "train": pipeline.run, "run": pipeline.run},
    summary=pipeline.summary,
    tuner=keras_tuner(pipeline.TUNING),
    description="a convolutional autoencoder on Fashion-MNIST whose codes become a feature table",
)
