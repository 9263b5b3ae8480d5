"""Runs: one recorded training run of each model family, between the store (which records) and the search
(which repeats runs): an XGBoost fit (:mod:`~spark_ml_pipeline.runs.xgboost_run`) and a Horovod Keras fit
(:mod:`~spark_ml_pipeline.runs.keras_run`), each trained, evaluated on held-out rows, committed and reported
the same way for every pipeline of that family. Its surface is its modules."""

__all__ = ["keras_run", "xgboost_report", "xgboost_run"]
