"""The ``tabular`` pipeline kind: any tabular data set, declared by one conf file (``kind: tabular``).

A conf file ``conf/pipelines/<name>.yaml`` names the input, its schema, the label and task, the features and
the validation rules; ingest, train, run, search (``jobs.tune``) and batch scoring (``jobs.score``) follow.
Its stages and plugins are deferred: a job imports the modules of the stage it runs, nothing more.
"""
from pipelines.tabular.config import NAME, TabularConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=TabularConfig,
    stages={"ingest": Deferred("pipelines.tabular.ingest:ingest"),
            "train": Deferred("pipelines.tabular.pipeline:train"), "run": Deferred("pipelines.tabular.pipeline:run")},
    summary=Deferred("spark_ml_pipeline.runs.xgboost_run:summary"),
    tuner=Deferred("pipelines.tabular.tuner:tuner"),
    scorer=Deferred("pipelines.tabular.scoring:scorer"),
    ingest_check=Deferred("pipelines.tabular.ingest:ingest_check"),
    description="Any tabular data set from one conf file: schema, validation/quarantine, declared features, "
                "XGBoost regression or classification",
)
