"""The search of a tabular pipeline: the library's XGBoost tuner on the same split and features as ``train``.

Trials are judged on the validation rows; the refit (train + validation rows) by the test RMSE (regression) or
test log loss (classification), both minimised, on the test split or, with ``input.test_uri``, on that file's
valid rows (the champion is compared on the same rows). A classifier's refit gets the same ``IndexToString``
tail as a trained model, so the registered champion predicts original labels too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml import PipelineModel

from pipelines.tabular.config import TabularConfig
from pipelines.tabular.ingest import ingest
from pipelines.tabular.pipeline import FEATURES_COLUMN, evaluator, is_classification, training_data
from spark_ml_pipeline.tune.xgboost_tuner import XGBoostSearchData, XGBoostTuner


@dataclass
class TabularSearchData(XGBoostSearchData):
    tail: list = field(default_factory=list)  # stages after the estimator (a classifier's IndexToString)


def prepare_search(spark, config: TabularConfig) -> TabularSearchData:
    """Ingest the input (validate, quarantine); the search fits on the split of its valid rows."""
    ingest(spark, config)
    data = training_data(spark, config)
    return TabularSearchData(splits=data.splits, feature_stages=data.feature_stages, label=data.label,
                             evaluate=evaluator(config, data.label, data.classes),
                             test_metric="log_loss" if is_classification(config) else "rmse",
                             test_direction="minimize", task=config.task, features=FEATURES_COLUMN,
                             tail=data.tail)


class TabularTuner(XGBoostTuner):
    """The library's XGBoost tuner; a classifier's refit ends with the label mapping (IndexToString)."""

    def refit(self, best_config, best_attrs: dict):
        fitted, metrics = super().refit(best_config, best_attrs)
        tail = self.data.tail
        return (PipelineModel([*fitted.stages, *tail]) if tail else fitted), metrics
