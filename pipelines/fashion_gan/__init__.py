"""The ``fashion_gan`` pipeline, declared here once and found by name:
a conditional DCGAN on Fashion-MNIST trained with Horovod on Spark, judged by the project's own classifier."""
from pipelines.fashion_gan.pipeline import NAME, FashionGanConfig
from spark_ml_pipeline.runtime.discovery import whole_run_pipeline

PIPELINE = whole_run_pipeline(
    NAME, FashionGanConfig, "pipelines.fashion_gan.pipeline",
    description="a conditional DCGAN on Fashion-MNIST, Horovod on Spark, judged by the fashion_mnist classifier")
