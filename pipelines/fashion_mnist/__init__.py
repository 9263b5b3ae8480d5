"""The ``fashion_mnist`` pipeline, declared here once and found by name:
Fashion-MNIST classification, Keras on Horovod."""
from pipelines.fashion_mnist.pipeline import NAME, FashionMnistConfig
from spark_ml_pipeline.runtime.discovery import whole_run_pipeline

PIPELINE = whole_run_pipeline(
    NAME, FashionMnistConfig, "pipelines.fashion_mnist.pipeline",
    description="Fashion-MNIST classification, Keras on Horovod",
    summary="spark_ml_pipeline.runs.keras_run:summary",
    scorer="pipelines.fashion_mnist.scoring:scorer")
