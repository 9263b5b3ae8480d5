"""The ``taxi_fare`` pipeline (NYC taxi fares, distributed XGBoost); declared here once, found by name."""
from pipelines.taxi_fare import pipeline
from pipelines.taxi_fare import scoring
from pipelines.taxi_fare.tuner import TaxiFareTuner, prepare_search
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.tune.xgboost_tuner import xgboost_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.TaxiFareConfig,
    stages={"generate": pipeline.generate, "ingest": pipeline.ingest, "featurize": pipeline.featurize,
            "train": pipeline.train, "run": pipeline.run},
    summary=pipeline.summary,
    tuner=xgboost_tuner(prepare_search, TaxiFareTuner),
    scorer=scoring.scorer,
    ingest_check=pipeline.ingest_check,
    description="NYC taxi fare regression: TLC trips, quarantine, features, distributed XGBoost",
)
