"""Distributed XGBoost (``xgboost.spark``) for every task: one builder, parameters checked before any job."""
from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

from py4j.protocol import Py4JJavaError
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from spark_ml_pipeline.runtime.config_models import XGBoostConfig
from spark_ml_pipeline.runtime.errors import ClusterError
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR

# xgboost.spark logs every fit and predict at INFO on the driver; keep the console for our summary.
logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

Task = Literal["regression", "binary", "multiclass"]
EVAL_METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "mlogloss"}


@dataclass(frozen=True)
class WorkerLayout:
    """How a fit uses the machines: XGBoost workers (barrier tasks) and boosting threads in each."""

    workers: int
    threads: int | None = None  # None: xgboost.spark's own choice, spark.task.cpus

    @classmethod
    def of(cls, config: XGBoostConfig, sc: SparkContext | None = None) -> "WorkerLayout":
        """The configured layout, the unset parts chosen for the session's master (see XGBoostConfig)."""
        if sc is None:
            return cls(config.num_workers or 1, config.threads_per_worker)
        if sc.master.startswith("local"):
            workers = config.num_workers or 1
            return cls(workers, config.threads_per_worker or max(1, sc.defaultParallelism // workers))
        task_cpus = int(sc.getConf().get("spark.task.cpus", "1"))
        executors = len(executor_ids(sc)) or sc.defaultParallelism // task_cpus  # none registered yet: the slots
        return cls(config.num_workers or max(1, executors), config.threads_per_worker)


class _Threads:
    """``nthread`` of the workers' boosting and DMatrix set by the layout: xgboost.spark takes it from
    spark.task.cpus, a session-wide setting that would also hold every other stage's tasks to one per that many
    cores in local mode."""

    _threads: int | None = None

    def _get_xgb_parameters(self, dataset):
        booster, train_call, dmatrix = super()._get_xgb_parameters(dataset)
        if self._threads:
            booster["nthread"] = dmatrix["nthread"] = self._threads
        return booster, train_call, dmatrix


class Regressor(_Threads, SparkXGBRegressor):
    """``SparkXGBRegressor`` whose threads per worker follow the layout."""


class Classifier(_Threads, SparkXGBClassifier):
    """``SparkXGBClassifier`` whose threads per worker follow the layout."""


def xgb_estimator(config: XGBoostConfig, features: str | list[str], label: str, task: Task = "regression",
                  device: str = "cpu", with_validation: bool = True, layout: WorkerLayout | None = None):
    """A configured XGBoost regressor (regression) or classifier; xgboost's own parameter checks run here,
    before any Spark job. Classifiers add ``probability`` (class probabilities)."""
    layout = layout or WorkerLayout.of(config)
    params = dict(
        features_col=features, label_col=label, prediction_col="prediction",
        num_workers=layout.workers, device=device, tree_method=config.tree_method,
        n_estimators=config.n_estimators, max_depth=config.max_depth, learning_rate=config.learning_rate,
        min_child_weight=config.min_child_weight, subsample=config.subsample,
        colsample_bytree=config.colsample_bytree, reg_lambda=config.reg_lambda, max_bin=config.max_bin,
        random_state=config.seed, eval_metric=EVAL_METRIC[task], verbose=False,
    )
    if with_validation and config.early_stopping_rounds:
        params.update(validation_indicator_col=VALIDATION_INDICATOR,
                      early_stopping_rounds=config.early_stopping_rounds)
    if task == "regression":
        estimator = Regressor(**params)
    else:
        estimator = Classifier(probability_col="probability", raw_prediction_col="raw_prediction", **params)
    estimator._threads = layout.threads
    return estimator


def xgb_regressor(config: XGBoostConfig, features: str | list[str], label: str, device: str = "cpu",
                  with_validation: bool = True, layout: WorkerLayout | None = None) -> SparkXGBRegressor:
    return xgb_estimator(config, features, label, "regression", device, with_validation, layout)


@contextlib.contextmanager
def fit_input_layout(spark: SparkSession, workers: int) -> Iterator[None]:
    """While a fit is planned and runs: file scans split into as many partitions as there are workers, so
    xgboost.spark need not shuffle its input into that count (a barrier stage cannot coalesce), and Arrow
    batches large enough that a worker's input crosses from the JVM in a few batches, not hundreds."""
    settings = {"spark.sql.files.maxPartitionNum": str(workers),
                "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS)}
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


# XGBoost's workers train together in one barrier stage, and Spark does not retry a failed barrier result stage
# ("Could not recover from a failed barrier ResultStage"): one lost executor fails the whole fit. A new fit on
# the executors the cluster has by then (a standalone master replaces a lost one) is the retry Spark cannot do.
LOST_EXECUTOR_RETRIES = 1
FIT_DESCRIPTION = "fit features + XGBoost"  # the fit's Spark jobs, as the UI and its REST API show them
ARROW_BATCH_ROWS = 1_000_000  # rows per Arrow batch into a worker during a fit (xgboost.spark's default: 10k)


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
    """Feature stages + estimator, fitted as one PipelineModel (saved and scored as a unit); the input is read
    with one partition per XGBoost worker (:func:`fit_input_layout`).

    A fit whose barrier stage lost an executor is fitted again, up to ``retries`` times (a warning line each
    time, and ``on_retry(attempt, reason)``); then a :class:`ClusterError` (exit code 4) names the loss."""
    pipeline = Pipeline(stages=[*stages, estimator])
    sc = training.sparkSession.sparkContext
    attempts = max(0, retries) + 1
    attempt = 1
    while True:
        executors = executor_ids(sc)
        try:
            with _job_description(sc, f"{FIT_DESCRIPTION} (attempt {attempt} of {attempts})"), \
                    fit_input_layout(training.sparkSession, estimator.getOrDefault("num_workers")):
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
