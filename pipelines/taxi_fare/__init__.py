"""The ``taxi_fare`` pipeline (NYC taxi fares, distributed XGBoost); declared here once, found by name. Its stages
and plugins are deferred: a job imports the modules of the stage it runs, nothing more."""
from pipelines.taxi_fare.config import NAME, TaxiFareConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.taxi_fare.pipeline"
TRAIN = "pipelines.taxi_fare.train"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=TaxiFareConfig,
    stages={"generate": Deferred(f"{STAGES}:generate"), "ingest": Deferred(f"{STAGES}:ingest"),
            "featurize": Deferred(f"{STAGES}:featurize"), "train": Deferred(f"{TRAIN}:train"),
            "run": Deferred(f"{TRAIN}:run")},
    summary=Deferred(f"{TRAIN}:summary"),
    tuner=Deferred("pipelines.taxi_fare.tuner:tuner"),
    scorer=Deferred("pipelines.taxi_fare.scoring:scorer"),
    ingest_check=Deferred(f"{STAGES}:ingest_check"),
    description="NYC taxi fare regression: TLC trips, quarantine, features, distributed XGBoost",
)
