"""Distributed XGBoost (``xgboost.spark``) for every task: one builder, parameters checked before any job."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator, Literal

from py4j.protocol import Py4JJavaError
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.sql import DataFrame
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from spark_ml_pipeline.runtime.config_models import XGBoostConfig
from spark_ml_pipeline.runtime.errors import ClusterError
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


# XGBoost's workers train together in one barrier stage, and Spark does not retry a failed barrier result stage
# ("Could not recover from a failed barrier ResultStage"): one lost executor fails the whole fit. A new fit on
# the executors the cluster has by then (a standalone master replaces a lost one) is the retry Spark cannot do.
LOST_EXECUTOR_RETRIES = 1
FIT_DESCRIPTION = "fit features + XGBoost"  # the fit's Spark jobs, as the UI and its REST API show them


def lost_executor(exc: BaseException, executors_before: set[str] | None = None,
                  executors_now: set[str] | None = None) -> str | None:
    """The reason when ``exc`` is a barrier stage aborted by a lost executor (worth a new fit), else None: Spark's
    ``ExecutorLostFailure`` line, or, when another task's failure was reported first, the executors that are
    gone since the fit started (``executors_before`` - ``executors_now``)."""
    if not isinstance(exc, Py4JJavaError):
        return None
    try:
        text = str(exc.java_exception.toString())
    except Exception:  # the JVM is gone: not something a new fit can fix
        return None
    if "failed barrier" not in text:
        return None
    lines = [line.strip() for line in text.splitlines()]
    reported = next((line for line in lines if line.startswith("ExecutorLostFailure")), None)
    gone = sorted((executors_before or set()) - (executors_now or set()))
    return reported or (f"executor(s) {', '.join(gone)} lost during the stage" if gone else None)


def executor_ids(sc) -> set[str]:
    """The ids of the application's live executors (none in local mode)."""
    try:
        return {e for e in str(sc._jsc.sc().getExecutorIds().mkString(",")).split(",") if e}
    except Exception:  # the JVM is gone
        return set()


@contextlib.contextmanager
def _job_description(sc, description: str) -> Iterator[None]:
    previous = sc.getLocalProperty("spark.job.description")  # a search trial's job group sets one
    sc.setLocalProperty("spark.job.description", description)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", previous)


def fit_pipeline(stages: list[Transformer], estimator, training: DataFrame, retries: int = LOST_EXECUTOR_RETRIES,
                 on_retry: Callable[[int, str], None] | None = None) -> PipelineModel:
    """Feature stages + estimator, fitted as one PipelineModel (saved and scored as a unit).

    A fit whose barrier stage lost an executor is fitted again, up to ``retries`` times (a warning line each
    time, and ``on_retry(attempt, reason)``); then a :class:`ClusterError` (exit code 4) names the loss."""
    pipeline = Pipeline(stages=[*stages, estimator])
    sc = training.sparkSession.sparkContext
    attempts = max(0, retries) + 1
    attempt = 1
    while True:
        executors = executor_ids(sc)
        try:
            with _job_description(sc, f"{FIT_DESCRIPTION} (attempt {attempt} of {attempts})"):
                return pipeline.fit(training)
        except Py4JJavaError as exc:
            reason = lost_executor(exc, executors, executor_ids(sc))
            if reason is None:
                raise
            if attempt == attempts:
                raise ClusterError(f"Spark cluster {sc.master}: an executor was lost during the XGBoost fit's barrier "
                                   f"stage in each of {attempts} attempt(s) ({reason})") from None
            print(f"warning: XGBoost fit attempt {attempt} of {attempts} lost an executor on {sc.master} ({reason}); "
                  "fitting again", file=sys.stderr, flush=True)
            if on_retry is not None:
                on_retry(attempt, reason)
            attempt += 1


def best_iteration(model: PipelineModel) -> int | None:
    booster = model.stages[-1].get_booster()
    best = booster.attr("best_iteration")
    return int(best) if best is not None else None
