"""Splits, distributed XGBoost estimators and regression metrics."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config_models import SplitConfig, XGBoostConfig

# xgboost.spark logs every fit and predict at INFO on the driver; keep the console for our summary.
logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

VALIDATION_INDICATOR = "is_validation"
SPLIT_BUCKETS = 10_000


@dataclass
class Splits:
    train: DataFrame
    validation: DataFrame
    test: DataFrame

    def train_with_indicator(self) -> DataFrame:
        """Training and validation rows in one frame, flagged for XGBoost early stopping."""
        return (self.train.withColumn(VALIDATION_INDICATOR, F.lit(False))
                .unionByName(self.validation.withColumn(VALIDATION_INDICATOR, F.lit(True))))


def split_by_hash(df: DataFrame, config: SplitConfig, key_columns: list[str] | None = None) -> Splits:
    """Deterministic split: a row's bucket is a hash of its content, independent of partitioning."""
    key_columns = key_columns or df.columns
    bucket = F.pmod(F.xxhash64(F.lit(config.seed), *[F.col(c) for c in key_columns]), F.lit(SPLIT_BUCKETS))
    fraction = bucket / float(SPLIT_BUCKETS)
    test_end = config.test_fraction
    validation_end = test_end + config.validation_fraction
    return Splits(
        train=df.where(fraction >= validation_end),
        validation=df.where((fraction >= test_end) & (fraction < validation_end)),
        test=df.where(fraction < test_end),
    )


def xgb_regressor(config: XGBoostConfig, features: str | list[str], label: str, device: str = "cpu",
                  with_validation: bool = True):
    """A configured ``SparkXGBRegressor``; its own parameter checks run here, before any Spark job."""
    from xgboost.spark import SparkXGBRegressor

    params = dict(
        features_col=features, label_col=label, prediction_col="prediction",
        num_workers=config.num_workers, device=device, tree_method=config.tree_method,
        n_estimators=config.n_estimators, max_depth=config.max_depth, learning_rate=config.learning_rate,
        min_child_weight=config.min_child_weight, subsample=config.subsample,
        colsample_bytree=config.colsample_bytree, reg_lambda=config.reg_lambda, max_bin=config.max_bin,
        random_state=config.seed, eval_metric="rmse", verbose=False,
    )
    if with_validation and config.early_stopping_rounds:
        params.update(validation_indicator_col=VALIDATION_INDICATOR,
                      early_stopping_rounds=config.early_stopping_rounds)
    return SparkXGBRegressor(**params)


def fit_pipeline(stages: list[Transformer], estimator, training: DataFrame) -> PipelineModel:
    """Feature stages + estimator, fitted as one PipelineModel (saved and scored as a unit)."""
    return Pipeline(stages=[*stages, estimator]).fit(training)


def best_iteration(model: PipelineModel) -> int | None:
    booster = model.stages[-1].get_booster()
    best = booster.attr("best_iteration")
    return int(best) if best is not None else None


def regression_metrics(predictions: DataFrame, label: str, prediction: str = "prediction") -> dict[str, float]:
    """RMSE, MAE and R^2 in one aggregation pass."""
    error = F.col(prediction) - F.col(label)
    row = predictions.agg(
        F.count(F.lit(1)).alias("n"),
        F.avg(error * error).alias("mse"),
        F.avg(F.abs(error)).alias("mae"),
        F.var_pop(label).alias("variance"),
    ).first()
    if not row["n"]:
        raise ValueError("cannot evaluate on an empty test split")
    mse, variance = float(row["mse"]), float(row["variance"] or 0.0)
    return {"rmse": mse ** 0.5, "mae": float(row["mae"]), "r2": 1.0 - mse / variance if variance else 0.0,
            "n": int(row["n"])}
