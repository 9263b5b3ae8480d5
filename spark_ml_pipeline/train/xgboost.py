"""Distributed XGBoost (``xgboost.spark``) for every task: one builder, parameters checked before any job."""
from __future__ import annotations

import logging
from typing import Literal

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.sql import DataFrame
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from spark_ml_pipeline.runtime.config_models import XGBoostConfig
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR

# xgboost.spark logs every fit and predict at INFO on the driver; keep the console for our summary.
logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

Task = Literal["regression", "binary", "multiclass"]
EVAL_METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "mlogloss"}


def xgb_estimator(config: XGBoostConfig, features: str | list[str], label: str, task: Task = "regression",
                  device: str = "cpu", with_validation: bool = True):
    """A configured ``SparkXGBRegressor`` (regression) or ``SparkXGBClassifier``; xgboost's own parameter
    checks run here, before any Spark job. Classifiers add ``probability`` (class probabilities)."""
    params = dict(
        features_col=features, label_col=label, prediction_col="prediction",
        num_workers=config.num_workers, device=device, tree_method=config.tree_method,
        n_estimators=config.n_estimators, max_depth=config.max_depth, learning_rate=config.learning_rate,
        min_child_weight=config.min_child_weight, subsample=config.subsample,
        colsample_bytree=config.colsample_bytree, reg_lambda=config.reg_lambda, max_bin=config.max_bin,
        random_state=config.seed, eval_metric=EVAL_METRIC[task], verbose=False,
    )
    if with_validation and config.early_stopping_rounds:
        params.update(validation_indicator_col=VALIDATION_INDICATOR,
                      early_stopping_rounds=config.early_stopping_rounds)
    if task == "regression":
        return SparkXGBRegressor(**params)
    return SparkXGBClassifier(probability_col="probability", raw_prediction_col="raw_prediction", **params)


def xgb_regressor(config: XGBoostConfig, features: str | list[str], label: str, device: str = "cpu",
                  with_validation: bool = True) -> SparkXGBRegressor:
    return xgb_estimator(config, features, label, "regression", device, with_validation)


def fit_pipeline(stages: list[Transformer], estimator, training: DataFrame) -> PipelineModel:
    """Feature stages + estimator, fitted as one PipelineModel (saved and scored as a unit)."""
    return Pipeline(stages=[*stages, estimator]).fit(training)


def best_iteration(model: PipelineModel) -> int | None:
    booster = model.stages[-1].get_booster()
    best = booster.attr("best_iteration")
    return int(best) if best is not None else None
