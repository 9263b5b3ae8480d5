"""The ``fashion_mnist`` pipeline, declared here once and found by name:
Fashion-MNIST classification, Keras on Horovod."""
from pipelines.fashion_mnist.pipeline import NAME, FashionMnistConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.fashion_mnist.pipeline"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=FashionMnistConfig,
    stages={"ingest": Deferred(f"{STAGES}:ingest"), "train": Deferred(f"{STAGES}:run"),
            "run": Deferred(f"{STAGES}:run")},
    summary=Deferred("spark_ml_pipeline.runs.keras_run:summary"),
    tuner=Deferred(f"{STAGES}:tuner"),
    scorer=Deferred("pipelines.fashion_mnist.scoring:scorer"),
    description="Fashion-MNIST classification, Keras on Horovod",
)
