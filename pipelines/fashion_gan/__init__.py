"""The ``fashion_gan`` pipeline, declared here once and found by name:
a conditional DCGAN on Fashion-MNIST trained with Horovod on Spark, judged by the project's own classifier."""
from pipelines.fashion_gan.pipeline import NAME, FashionGanConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.fashion_gan.pipeline"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=FashionGanConfig,
    stages={"ingest": Deferred(f"{STAGES}:ingest"), "train": Deferred(f"{STAGES}:run"),
            "run": Deferred(f"{STAGES}:run")},
    summary=Deferred("pipelines.fashion_gan.pipeline:summary"),
    tuner=Deferred(f"{STAGES}:tuner"),
    description="a conditional DCGAN on Fashion-MNIST, Horovod on Spark, judged by the fashion_mnist classifier",
)
