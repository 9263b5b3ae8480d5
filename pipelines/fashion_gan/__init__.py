"""The ``fashion_gan`` pipeline, declared here once and found by name:
a conditional DCGAN on Fashion-MNIST trained with Horovod on Spark, judged by the project's own classifier."""
from pipelines.fashion_gan import pipeline
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.tune.gan_tuner import gan_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.FashionGanConfig,
    stages={"ingest": pipeline.ingest, "train": pipeline.run, "run": pipeline.run},
    summary=pipeline.summary,
    tuner=gan_tuner(pipeline.TUNING),
    description="a conditional DCGAN on Fashion-MNIST, Horovod on Spark, judged by the fashion_mnist classifier",
)
