"""The ``tabular`` pipeline kind: any tabular data set, declared by one conf file (``kind: tabular``).

A conf file ``conf/pipelines/<name>.yaml`` names the input, its schema, the label and task, the features and
the validation rules; ingest, train, run, search (``jobs.tune``) and batch scoring (``jobs.score``) follow.
"""
from pipelines.tabular import pipeline
from pipelines.tabular.config import NAME, TabularConfig
from pipelines.tabular.ingest import ingest, ingest_check
from pipelines.tabular.scoring import scorer
from pipelines.tabular.tuner import prepare_search
from spark_ml_pipeline.runs.xgboost_run import summary
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.tune.xgboost_tuner import xgboost_tuner

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=TabularConfig,
    stages={"ingest": ingest, "train": pipeline.train, "run": pipeline.run},
    summary=summary,
    tuner=xgboost_tuner(prepare_search),
    scorer=scorer,
    ingest_check=ingest_check,
    description="Any tabular data set from one conf file: schema, validation/quarantine, declared features, "
                "XGBoost regression or classification",
)
