"""The ``darcy_surrogate`` pipeline, declared here once and found by name:
Darcy-flow surrogate: coefficient map to solution field."""
from pipelines.darcy_surrogate import pipeline
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.runs.keras_run import summary
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.DarcySurrogateConfig,
    stages={"ingest": pipeline.ingest, "train": pipeline.run, "run": pipeline.run},
    summary=summary,
    tuner=keras_tuner(pipeline.TUNING),
    description="Darcy-flow surrogate: coefficient map to solution field",
)
