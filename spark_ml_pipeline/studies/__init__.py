"""Studies: Optuna study storages by location, the heartbeat of running trials, pruners by name, and the one
adapter over Optuna's private API (:mod:`~spark_ml_pipeline.studies.optuna_internals`).

Its own package beside ingest and report, below ``train``: the Horovod ranks (the train layer) open the study
from inside a fit to report each epoch (:mod:`spark_ml_pipeline.train.trial_reporting`), and the search (the tune
layer) creates and drives it; both need the storage, and nothing here needs Spark, MLflow or a model.
"""

__all__ = ["heartbeat", "optuna_internals", "pruners", "storage"]
