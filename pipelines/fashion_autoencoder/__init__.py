"""The ``fashion_autoencoder`` pipeline, declared here once and found by name:
a convolutional autoencoder on Fashion-MNIST whose codes become a feature table."""
from pipelines.fashion_autoencoder.pipeline import NAME, FashionAutoencoderConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.fashion_autoencoder.pipeline"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=FashionAutoencoderConfig,
    stages={"ingest": Deferred(f"{STAGES}:ingest"), "train": Deferred(f"{STAGES}:run"),
            "run": Deferred(f"{STAGES}:run")},
    summary=Deferred("pipelines.fashion_autoencoder.pipeline:summary"),
    tuner=Deferred(f"{STAGES}:tuner"),
    description="a convolutional autoencoder on Fashion-MNIST whose codes become a feature table",
)
