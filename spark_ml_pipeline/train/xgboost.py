"""Distributed XGBoost (``xgboost.spark``) for every task: one builder, parameters checked before any job."""
from __future__ import annotations

import contextlib
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import pandas as pd
from py4j.protocol import Py4JJavaError
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.serializers import UTF8Deserializer, read_int
from pyspark.sql.pandas.serializers import ArrowStreamSerializer
from pyspark.util import _load_from_socket
from xgboost import config_context
from xgboost import train as xgboost_train
from xgboost.sklearn import _can_use_qdm
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor
from xgboost.data import pandas_feature_info
from xgboost.spark.data import alias, create_dmatrix_from_partitions, make_qdm, stack_series
from xgboost.spark.summary import XGBoostTrainingSummary

from spark_ml_pipeline.runtime.config_models import XGBoostConfig
from spark_ml_pipeline.runtime.errors import ClusterError, ConfigError
from spark_ml_pipeline.runtime.session import session_settings
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR

# xgboost.spark logs every fit and predict at INFO on the driver; keep the console for our summary.
logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

Task = Literal["regression", "binary", "multiclass"]
EVAL_METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "mlogloss"}


@dataclass(frozen=True)
class WorkerLayout:
    """How a fit uses the machines: XGBoost workers (barrier tasks) and boosting threads in each.

    ``in_driver``: the one worker of a local-mode fit is the driver process itself. Spark still computes the
    input (every core, as many tasks as partitions) and streams it as Arrow batches; the driver builds the
    DMatrix and boosts, as native xgboost does. A barrier stage would add nothing on one machine but its
    fixed costs: three barrier syncs that poll once a second, the tracker, the model sent back, and a scan
    held to one partition (one core) so that the stage needs no shuffle."""

    workers: int
    threads: int | None = None  # None: xgboost.spark's own choice, spark.task.cpus
    in_driver: bool = False

    @classmethod
    def of(cls, config: XGBoostConfig, sc: SparkContext | None = None) -> "WorkerLayout":
        """The configured layout, the unset parts chosen for the session's master (see XGBoostConfig)."""
        if sc is None:
            return cls(config.num_workers or 1, config.threads_per_worker)
        if is_local(sc):
            workers = config.num_workers or 1
            return cls(workers, config.threads_per_worker or max(1, sc.defaultParallelism // workers),
                       in_driver=workers == 1)
        task_cpus = int(sc.getConf().get("spark.task.cpus", "1"))
        executors = len(executor_ids(sc)) or sc.defaultParallelism // task_cpus  # none registered yet: the slots
        return cls(config.num_workers or max(1, executors), config.threads_per_worker)


def is_local(sc: SparkContext) -> bool:
    return sc.master.startswith("local")


class _LayoutFit:
    """xgboost.spark's fit, laid out by a :class:`WorkerLayout`.

    * ``nthread`` of the boosting and DMatrix set by the layout: xgboost.spark takes it from spark.task.cpus, a
      session-wide setting that would also hold every other stage's tasks to one per that many cores in local
      mode.
    * ``in_driver``: the fit runs in the driver (:meth:`_fit_in_driver`), with xgboost.spark's own input
      columns, parameters, DMatrix construction and model, so the fitted model is the same class, saved and
      scored alike.
    * A list of feature columns with a validation indicator: xgboost 3.2 raises ``KeyError: 'values'`` on an
      Arrow batch with no training or no validation rows (``append_m`` in xgboost/spark/data.py falls back to
      the array column ``values``, absent with a column list; bench/xgboost_keyerror_repro.py reproduces it).
      An empty ``values`` column gives that fallback something to find empty.
    """

    _threads: int | None = None
    _in_driver: bool = False

    def _get_xgb_parameters(self, dataset):
        booster, train_call, dmatrix = super()._get_xgb_parameters(dataset)
        if self._threads:
            booster["nthread"] = dmatrix["nthread"] = self._threads
        return booster, train_call, dmatrix

    def _prepare_input_columns_and_feature_prop(self, dataset):
        columns, feature_prop = super()._prepare_input_columns_and_feature_prop(dataset)
        if feature_prop.features_cols_names and feature_prop.has_validation_col:
            columns.append(F.lit(None).cast("float").alias(alias.data))
        return columns, feature_prop

    def _fit(self, dataset):
        return self._fit_in_driver(dataset) if self._in_driver else super()._fit(dataset)

    def _fit_in_driver(self, dataset):
        """xgboost.spark's ``_fit`` with the driver as its only worker: the input's Arrow batches become pandas
        frames (:func:`pandas_batches`), as a barrier task gets them, kept as XGBoost stores them
        (:class:`CompactInput`), then xgboost.spark's own ``xgboost.train`` call, model classes and summary."""
        self._validate_params()
        columns, feature_prop = self._prepare_input_columns_and_feature_prop(dataset)
        dataset = dataset.select(*columns)
        booster_params, train_call_params, dmatrix_params = self._get_xgb_parameters(dataset)
        use_qdm = _can_use_qdm(booster_params.get("tree_method"), booster_params.get("device"))
        if use_qdm and booster_params.get("max_bin") is not None:
            dmatrix_params["max_bin"] = booster_params["max_bin"]
        evals_result: dict = {}
        with config_context(verbosity=booster_params.get("verbosity", 1)):
            plain = {alias.data, alias.label, alias.valid, *(feature_prop.features_cols_names or [])}
            if use_qdm and not feature_prop.enable_sparse_data_optim and set(dataset.columns) <= plain:
                compact_input = CompactInput(feature_prop.features_cols_names, feature_prop.has_validation_col)
                with pandas_batches(dataset, compact_input) as batches:
                    train, validation = compact_input.matrices(batches, dmatrix_params)
            else:  # weights, margins, groups or sparse vectors: xgboost.spark's own construction
                with pandas_batches(dataset) as batches:
                    train, validation = create_dmatrix_from_partitions(
                        iterator=batches, feature_cols=feature_prop.features_cols_names,
                        dev_ordinal=None, use_qdm=use_qdm, kwargs=dmatrix_params,
                        enable_sparse_data_optim=feature_prop.enable_sparse_data_optim,
                        has_validation_col=feature_prop.has_validation_col)
            evals = [(train, "training"), *([(validation, "validation")] if validation is not None else [])]
            booster = xgboost_train(params=booster_params, dtrain=train, evals=evals, evals_result=evals_result,
                                    **train_call_params)
        fitted = self._convert_to_sklearn_model(booster.save_raw("ubj"), booster.save_config())  # binary: no JSON parse
        model = self._create_pyspark_model(fitted, XGBoostTrainingSummary.from_metrics(evals_result))
        model._resetUid(self.uid)  # pyspark.ml's convention, as xgboost.spark's own fit does
        return self._copyValues(model)


# DMatrix construction settings; xgboost.spark's split_params passes the rest as data meta.
_NON_DATA_KEYS = ("max_bin", "missing", "silent", "nthread", "enable_categorical")


class CompactInput:
    """The fit's input kept as XGBoost stores it: each batch, as it arrives, becomes float32 features and labels
    split by the validation flag; then a training (and validation) ``QuantileDMatrix`` from them. xgboost.spark
    keeps every batch as a pandas frame (2-3x that), which ran 100M trips out of memory. Feature names and types
    are taken from the first batch as xgboost takes them from a pandas frame, so the model is the same."""

    def __init__(self, feature_cols: list[str] | None, has_validation: bool):
        self.feature_cols, self.has_validation = feature_cols, has_validation
        self.names = self.types = None

    def __call__(self, frame: pd.DataFrame) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
        """One batch -> {is validation: (features, labels)}."""
        if self.feature_cols:
            if self.names is None:
                self.names, self.types = pandas_feature_info(frame[self.feature_cols], None, None, None, False)
            features = frame[self.feature_cols].to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            features = stack_series(frame[alias.data]).astype(np.float32, copy=False)
        labels = frame[alias.label].to_numpy(dtype=np.float32)
        if not self.has_validation:
            return {False: (features, labels)}
        flags = frame[alias.valid].to_numpy(dtype=bool)
        return {False: (np.ascontiguousarray(features[~flags]), labels[~flags]),
                True: (np.ascontiguousarray(features[flags]), labels[flags])}

    def matrices(self, batches: Iterator[dict], dmatrix_params: dict):
        parts: dict[bool, dict[str, list]] = {False: defaultdict(list), True: defaultdict(list)}
        for batch in batches:
            for is_valid, (features, labels) in batch.items():
                parts[is_valid][alias.data].append(features)
                parts[is_valid][alias.label].append(labels)
        settings = {k: v for k, v in dmatrix_params.items() if k in _NON_DATA_KEYS}
        meta = {k: v for k, v in dmatrix_params.items() if k not in _NON_DATA_KEYS}
        meta.update(feature_names=self.names, feature_types=self.types)
        train = make_qdm(parts[False], None, meta, None, settings)
        return train, make_qdm(parts[True], None, meta, train, settings) if self.has_validation else None


class _ConvertedInPartitionOrder(ArrowStreamSerializer):
    """The collect's Arrow batches, each converted as it arrives (``convert(pandas frame)``; the Arrow copy is
    then freed: ``ArrowCollectSerializer`` holds every batch until the last has come, as the partition order
    comes last), yielded in partition order."""

    def __init__(self, convert: Callable):
        super().__init__()
        self.convert = convert

    def converted(self, batch):
        return self.convert(batch.to_pandas())

    def load_stream(self, stream):
        frames = [self.converted(batch) for batch in super().load_stream(stream)]
        count = read_int(stream)
        if count == -1:  # the JVM's error; server.getResult() raises it with its cause
            raise RuntimeError(UTF8Deserializer().loads(stream))
        for _ in range(count):
            index = read_int(stream)
            frame, frames[index] = frames[index], None  # the consumer holds the only reference
            yield frame


@contextlib.contextmanager
def pandas_batches(frame: DataFrame, convert: Callable = lambda batch: batch) -> Iterator[Iterator]:
    """The frame's rows as pandas frames of one Arrow batch each, passed through ``convert`` as they arrive and
    yielded in partition order (the same rows give the same model): ``DataFrame.toArrow``'s transport without
    a second copy of the data. The job's error, if any, is raised on leaving."""
    port, secret, server = frame._jdf.collectAsArrowToPython()
    try:
        with _load_from_socket((port, secret), _ConvertedInPartitionOrder(convert)) as stream:
            yield stream
    finally:
        server.getResult()


class Regressor(_LayoutFit, SparkXGBRegressor):
    """``SparkXGBRegressor`` laid out by a :class:`WorkerLayout`."""


class Classifier(_LayoutFit, SparkXGBClassifier):
    """``SparkXGBClassifier`` laid out by a :class:`WorkerLayout`."""


def xgb_estimator(config: XGBoostConfig, features: str | list[str], label: str, task: Task = "regression",
                  device: str = "cpu", with_validation: bool = True, layout: WorkerLayout | None = None):
    """A configured XGBoost regressor (regression) or classifier; xgboost's own parameter checks run here,
    before any Spark job. Classifiers add ``probability`` (class probabilities). ``with_validation``: the frame
    it fits flags validation rows (``is_validation``), which never train."""
    layout = layout or WorkerLayout.of(config)
    params = dict(
        features_col=features, label_col=label, prediction_col="prediction",
        num_workers=layout.workers, device=device, tree_method=config.tree_method,
        n_estimators=config.n_estimators, max_depth=config.max_depth, learning_rate=config.learning_rate,
        min_child_weight=config.min_child_weight, subsample=config.subsample,
        colsample_bytree=config.colsample_bytree, reg_lambda=config.reg_lambda, max_bin=config.max_bin,
        random_state=config.seed, eval_metric=EVAL_METRIC[task], verbose=False,
        # The rendezvous tracker runs in the first worker's task, not the driver: xgboost's tracker sends to the
        # workers from bare C++ threads, and an executor lost during the rendezvous makes that send throw, which
        # aborts the whole process hosting it (SIGABRT) - a failed task Spark handles, never the driver.
        launch_tracker_on_driver=False,
    )
    if config.monotone_constraints:
        if isinstance(features, str):
            raise ConfigError(f"model.monotone_constraints names features, but the model is trained on the vector "
                             f"column {features!r}: constraints need named feature columns")
        unknown = sorted(set(config.monotone_constraints) - set(features))
        if unknown:
            raise ConfigError(f"model.monotone_constraints: unknown feature(s) {', '.join(unknown)} "
                             f"(features: {', '.join(features)})")
        params["monotone_constraints"] = "(" + ",".join(str(config.monotone_constraints.get(name, 0))
                                                        for name in features) + ")"
    if with_validation:
        # Validation rows are held out of training even without early stopping (scored each round for the
        # curves); otherwise the flagged frame would train on them and validation figures would be in-sample.
        params["validation_indicator_col"] = VALIDATION_INDICATOR
        if config.early_stopping_rounds:
            params["early_stopping_rounds"] = config.early_stopping_rounds
    if task == "regression":
        estimator = Regressor(**params)
    else:
        estimator = Classifier(probability_col="probability", raw_prediction_col="raw_prediction", **params)
    estimator._threads = layout.threads
    estimator._in_driver = layout.in_driver and device == "cpu"  # GPUs are assigned to barrier tasks
    return estimator


@contextlib.contextmanager
def fit_input_layout(spark: SparkSession, estimator) -> Iterator[None]:
    """While a fit is planned and runs: Arrow batches large enough that a worker's input crosses from the JVM
    in a few batches, not hundreds; for a barrier fit, file scans split into as many partitions as there are
    workers, so xgboost.spark need not shuffle its input into that count (a barrier stage cannot coalesce).
    A fit in the driver keeps every partition: its input is computed on every core."""
    settings = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS)}
    if not getattr(estimator, "_in_driver", False):
        settings["spark.sql.files.maxPartitionNum"] = str(estimator.getOrDefault("num_workers"))
    with session_settings(spark, settings):
        yield


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
                    fit_input_layout(training.sparkSession, estimator):
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


def feature_importance(xgb_model, names: Sequence[str] | None = None,
                       importance_type: str = "total_gain") -> dict[str, float]:
    """Total gain (or ``importance_type``) of each feature over all trees of a fitted xgboost.spark model;
    features a vector held are named by ``names`` (position i: ``f<i>``) when given."""
    scores = xgb_model.get_booster().get_score(importance_type=importance_type)
    if names is None:
        return {k: float(v) for k, v in scores.items()}
    return {(names[int(k[1:])] if k[:1] == "f" and k[1:].isdigit() and int(k[1:]) < len(names) else k): float(v)
            for k, v in scores.items()}


def learning_history(xgb_model) -> dict[str, list[float]]:
    """Per-round evaluation metrics of the fit: ``<metric>`` on train, ``val_<metric>`` on validation."""
    summary = getattr(xgb_model, "training_summary", None)
    if summary is None:
        return {}
    return {**{k: list(v) for k, v in summary.train_objective_history.items()},
            **{f"val_{k}": list(v) for k, v in summary.validation_objective_history.items()}}
