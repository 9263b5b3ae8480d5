"""The ``darcy_surrogate`` pipeline, declared here once and found by name:
Darcy-flow surrogate: coefficient map to solution field."""
from pipelines.darcy_surrogate.pipeline import NAME, DarcySurrogateConfig
from spark_ml_pipeline.runtime.discovery import whole_run_pipeline

PIPELINE = whole_run_pipeline(
    NAME, DarcySurrogateConfig, "pipelines.darcy_surrogate.pipeline",
    description="Darcy-flow surrogate: coefficient map to solution field",
    summary="spark_ml_pipeline.runs.keras_run:summary")
