"""The search of a tabular pipeline: the library's XGBoost tuner on the same split and features as ``train``.

Trials are judged on the validation rows; the refit (train + validation rows) by the test RMSE (regression) or
test log loss (classification), both minimised, on the test split or, with ``input.test_uri``, on that file's
valid rows (the champion is compared on the same rows). A classifier's refit gets the same ``IndexToString``
tail as a trained model, so the registered champion predicts original labels too.
"""
from __future__ import annotations

from pipelines.tabular.config import TabularConfig
from pipelines.tabular.ingest import ingest
from pipelines.tabular.pipeline import training_data
from spark_ml_pipeline.runs.xgboost_run import XGBoostData
from spark_ml_pipeline.tune.xgboost_tuner import xgboost_tuner


def prepare_search(spark, config: TabularConfig) -> XGBoostData:
    """Ingest the input (validate, quarantine); the search fits on the split of its valid rows."""
    ingest(spark, config)
    return training_data(spark, config)


# The search's tuner factory (pipelines/tabular/__init__.py names it).
tuner = xgboost_tuner(prepare_search)
