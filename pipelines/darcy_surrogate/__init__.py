"""The ``darcy_surrogate`` pipeline, declared here once and found by name:
Darcy-flow surrogate: coefficient map to solution field."""
from pipelines.darcy_surrogate.pipeline import NAME, DarcySurrogateConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.darcy_surrogate.pipeline"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=DarcySurrogateConfig,
    stages={"ingest": Deferred(f"{STAGES}:ingest"), "train": Deferred(f"{STAGES}:run"),
            "run": Deferred(f"{STAGES}:run")},
    summary=Deferred("spark_ml_pipeline.runs.keras_run:summary"),
    tuner=Deferred(f"{STAGES}:tuner"),
    description="Darcy-flow surrogate: coefficient map to solution field",
)
