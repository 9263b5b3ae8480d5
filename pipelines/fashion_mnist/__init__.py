"""The ``fashion_mnist`` pipeline, declared here once and found by name:
Fashion-MNIST classification, Keras on Horovod."""
from pipelines.fashion_mnist import pipeline
from pipelines.fashion_mnist import scoring
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.runs.keras_run import summary
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.FashionMnistConfig,
    stages={"ingest": pipeline.ingest, "train": pipeline.run, "run": pipeline.run},
    summary=summary,
    tuner=keras_tuner(pipeline.TUNING),
    scorer=scoring.scorer,
    description="Fashion-MNIST classification, Keras on Horovod",
)
