"""A Spark ML Estimator that trains a Keras model data-parallel on Spark executors, with Horovod or TensorFlow's own
``MultiWorkerMirroredStrategy`` (``backend``).

``fit(df)`` writes the prepared DataFrame to Parquet in the store and starts one rank per process: Horovod's
(``horovod.spark.run``, Gloo) or TensorFlow's (one per Spark barrier task,
:mod:`spark_ml_pipeline.train.tf_distribute_launch`). Each rank reads its own shard with pyarrow (no petastorm);
the fit returns a :class:`KerasModel` Transformer that scores DataFrames with a batched pandas UDF.

A rank that dies or fails ends the fit with one :class:`DistributedFitError` line (its output is in the work
directory's ``ranks.log``); the epochs checkpointed so far are kept for a rerun. In Spark local mode Horovod
listens on the loopback interface only (:mod:`spark_ml_pipeline.train.horovod_network`).
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasPredictionCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable, DefaultParamsWriter
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_ml_pipeline.runtime.errors import StoreError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join, local_path
from spark_ml_pipeline.runtime.verbosity import configure as configure_verbosity
from spark_ml_pipeline.runtime.verbosity import environment as verbosity_environment
from spark_ml_pipeline.train.augmentation import augmentation_problem
from spark_ml_pipeline.train.horovod_network import LoopbackNics, horovod_services, loopback_interfaces
from spark_ml_pipeline.train.keras_rank import PROGRESS_LOG, RankSpec, read_checkpoint_state, train_rank
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.losses import resolve_loss
from spark_ml_pipeline.train.models.loading import check_keras_file, load_keras_model
from spark_ml_pipeline.train.rank_backends import BACKENDS
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR
from spark_ml_pipeline.train.tf_distribute_launch import RankFailure, run_tf_distribute
from spark_ml_pipeline.train.trial_reporting import RemoteTrial


DEFAULT_RANKS = 2  # Horovod ranks of a fit unless told otherwise (the estimator's and the configuration's)


def _shape(value) -> list[int]:
    return [int(v) for v in TypeConverters.toList(value)]


def _training_settings(value) -> KerasTrainingSettings:
    """Kept whole, subclass and all: the ranks get exactly this object."""
    if not isinstance(value, KerasTrainingSettings):
        raise TypeError(f"expected a KerasTrainingSettings, got {type(value).__name__}")
    return value


class _KerasParams(HasFeaturesCol, HasPredictionCol):
    """What fitting and scoring share: the input array column and its shape, the output column."""

    inputShape = Param(Params._dummy(), "inputShape", "shape of one input", _shape)


def scoring_batch_size(settings: KerasTrainingSettings) -> int:
    """Rows per predict call of a fitted model: at least 256 (scoring needs no gradients), else the training batch."""
    return max(256, settings.batch_size)


@dataclass(frozen=True)
class KerasTrainingSummary:
    """What a fit learned besides the weights: per-epoch metrics of rank 0 and every rank's report."""

    history: dict[str, list[float]] = field(default_factory=dict)
    rank_results: list[dict] = field(default_factory=list)  # sorted by rank

    @property
    def rows(self) -> int:
        return sum(r["rows"] for r in self.rank_results)

    @property
    def epochs_trained(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def pruned_at_epoch(self) -> int | None:
        return self.rank_results[0].get("pruned_at_epoch") if self.rank_results else None


class KerasEstimator(Estimator, _KerasParams, HasLabelCol):
    """Parameters are declared on the class and checked in :meth:`validate` before any Spark job; the fitted
    state (history, the ranks' reports) lives on the returned :class:`KerasModel` (``model.summary``).

    Three kinds: what to learn (columns, shapes, ``modelSpec``, ``loss``, ``metrics``); how to train, all in
    ``trainingSettings`` (a frozen :class:`KerasTrainingSettings`, handed whole to every rank); and where it runs
    (``backend``, ``numProc``, ``threadsPerRank``, ``device``, ``workDir``, ``dataDir``, ``trialReporting``,
    ``showProgress``)."""

    labelShape = Param(Params._dummy(), "labelShape", "shape of one label ([] for a scalar)", _shape)
    labelDtype = Param(Params._dummy(), "labelDtype", "numpy dtype of labels", TypeConverters.toString)
    validationCol = Param(Params._dummy(), "validationCol", "boolean column marking validation rows",
                          TypeConverters.toString)
    modelSpec = Param(Params._dummy(), "modelSpec", "model-zoo spec as JSON", TypeConverters.toString)
    outputShape = Param(Params._dummy(), "outputShape", "shape of the model output", _shape)
    outputActivation = Param(Params._dummy(), "outputActivation", "activation of the head", TypeConverters.toString)
    loss = Param(Params._dummy(), "loss", "a Keras loss name, or relative_l2 / relative_h1 for fields",
                 TypeConverters.toString)
    metrics = Param(Params._dummy(), "metrics", "Keras metrics", TypeConverters.toListString)
    trainingSettings = Param(Params._dummy(), "trainingSettings", "how every rank trains: a frozen, validated "
                             "KerasTrainingSettings (optimizer, learning rate, batch size, epochs, ...)",
                             _training_settings)
    device = Param(Params._dummy(), "device", "cpu, or cuda: one GPU per rank (by local rank)",
                   TypeConverters.toString)
    backend = Param(Params._dummy(), "backend", "how ranks train together: horovod, or tf_distribute "
                    "(TensorFlow's MultiWorkerMirroredStrategy in Spark barrier tasks)", TypeConverters.toString)
    numProc = Param(Params._dummy(), "numProc", "ranks (Spark tasks)", TypeConverters.toInt)
    threadsPerRank = Param(Params._dummy(), "threadsPerRank", "TF intra/inter-op threads per rank",
                           TypeConverters.toInt)
    workDir = Param(Params._dummy(), "workDir", "store location for data, checkpoints and the model",
                    TypeConverters.toString)
    dataDir = Param(Params._dummy(), "dataDir", "where the ranks' Parquet data goes (default <workDir>/data); "
                    "fits of one data set (search trials) can share it", TypeConverters.toString)
    trialReporting = Param(Params._dummy(), "trialReporting", "JSON of a spark_ml_pipeline.train.trial_reporting.RemoteTrial: "
                           "rank 0 reports every epoch to that search trial, whose pruner can stop the fit",
                           TypeConverters.toString)
    showProgress = Param(Params._dummy(), "showProgress", "print rank 0's line per epoch (metrics, samples/s, ETA) "
                         "on the driver's console as the fit runs", TypeConverters.toBoolean)

    @keyword_only
    def __init__(self, *, featuresCol="features", inputShape=None, labelCol="label", labelShape=None,
                 labelDtype="float32", validationCol=VALIDATION_INDICATOR, modelSpec=None, outputShape=None,
                 outputActivation="", loss="mse", metrics=None, trainingSettings=None, backend=None, numProc=None,
                 threadsPerRank=1, device=None, workDir=None, dataDir=None, trialReporting=None,
                 predictionCol="prediction", showProgress=True):
        super().__init__()
        self._setDefault(featuresCol="features", labelCol="label", labelShape=[], labelDtype="float32",
                         validationCol=VALIDATION_INDICATOR, outputActivation="", loss="mse", metrics=[],
                         trainingSettings=KerasTrainingSettings(), backend="horovod", numProc=DEFAULT_RANKS,
                         threadsPerRank=1, device="cpu", predictionCol="prediction", showProgress=True)
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def setTrainingSettings(self, value: KerasTrainingSettings) -> "KerasEstimator":
        return self._set(trainingSettings=value)

    def getTrainingSettings(self) -> KerasTrainingSettings:
        return self.getOrDefault(self.trainingSettings)

    def validate(self, dataset: DataFrame | None = None) -> None:
        """Every parameter checked before any job runs (like xgboost.spark's estimators). The training settings
        validated themselves when they were made (frozen since)."""
        for required in (self.inputShape, self.modelSpec, self.outputShape, self.workDir):
            if not self.isDefined(required):
                raise ValueError(f"{type(self).__name__}: parameter {required.name} is required")
        for positive in (self.numProc, self.threadsPerRank):
            if self.getOrDefault(positive) < 1:
                raise ValueError(f"{type(self).__name__}: {positive.name} must be >= 1")
        if self.getOrDefault(self.device) not in ("cpu", "cuda"):
            raise ValueError(f"{type(self).__name__}: device must be cpu or cuda")
        if self.getOrDefault(self.backend) not in self.backends():
            raise ValueError(f"{type(self).__name__}: backend must be one of {', '.join(self.backends())}, "
                             f"got {self.getOrDefault(self.backend)!r}")
        try:
            resolve_loss(self.getOrDefault(self.loss))
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        json.loads(self.getOrDefault(self.modelSpec))
        settings = self.getTrainingSettings()
        problem = augmentation_problem(settings.augment, tuple(self.getOrDefault(self.inputShape)),
                                       tuple(self.getOrDefault(self.labelShape)), settings.augment_channels)
        if problem:
            raise ValueError(f"{type(self).__name__}: {problem}")
        if self.isDefined(self.trialReporting):
            RemoteTrial(**json.loads(self.getOrDefault(self.trialReporting)))
        if dataset is not None:
            for column in (self.getOrDefault(self.featuresCol), self.getOrDefault(self.labelCol)):
                if column not in dataset.columns:
                    raise ValueError(f"{type(self).__name__}: input has no column {column!r} "
                                     f"(columns: {', '.join(dataset.columns)})")
        slots = _task_slots(dataset)
        if self.getOrDefault(self.numProc) > slots:
            raise ValueError(f"{type(self).__name__}: numProc={self.getOrDefault(self.numProc)} exceeds the "
                             f"cluster's {slots} task slots")

    @classmethod
    def backends(cls) -> tuple[str, ...]:
        """The backends this estimator's rank function trains on."""
        return BACKENDS

    def rank_spec(self, train_dir: str, validation_dir: str | None) -> RankSpec:
        g = self.getOrDefault
        work = local_path(g(self.workDir))
        activation = g(self.outputActivation) or None
        return RankSpec(
            train_dir=train_dir, validation_dir=validation_dir, features_column=g(self.featuresCol),
            label_column=g(self.labelCol), input_shape=tuple(g(self.inputShape)),
            label_shape=tuple(g(self.labelShape)), label_dtype=g(self.labelDtype),
            model_spec=json.loads(g(self.modelSpec)), output_shape=tuple(g(self.outputShape)),
            output_activation=activation, loss=g(self.loss), metrics=tuple(g(self.metrics)),
            checkpoint_dir=str(work / "checkpoints"), output_model=str(work / "model.keras"),
            training=self.getTrainingSettings(), threads_per_rank=g(self.threadsPerRank), device=g(self.device),
            backend=g(self.backend), trial=self._remote_trial())

    def _remote_trial(self):
        if not self.isDefined(self.trialReporting):
            return None
        return RemoteTrial(**json.loads(self.getOrDefault(self.trialReporting)))

    def write_data(self, dataset: DataFrame) -> tuple[str, bool]:
        """Write what the ranks read (train/ and validation/ Parquet) once, atomically; a restarted fit
        (same workDir) or another search trial (same dataDir) reuses it. Returns (location, has validation)."""
        g = self.getOrDefault
        columns = [g(self.featuresCol), g(self.labelCol)]
        validation_col = g(self.validationCol)
        has_validation = validation_col in dataset.columns
        data_dir = g(self.dataDir) if self.isDefined(self.dataDir) else join(g(self.workDir), "data")
        if not HadoopFS(dataset.sparkSession).exists(data_dir):
            selected = dataset.select(*columns, *([validation_col] if has_validation else []))
            partitions = g(self.numProc)
            with atomic_output(dataset.sparkSession, data_dir) as temporary:
                if has_validation:
                    for name, condition in (("train", ~F.col(validation_col)), ("validation", F.col(validation_col))):
                        (selected.where(condition).drop(validation_col).repartition(partitions)
                         .write.parquet(join(temporary, name)))
                else:
                    selected.repartition(partitions).write.parquet(join(temporary, "train"))
        return data_dir, has_validation

    def _fit(self, dataset: DataFrame) -> "KerasModel":
        self.validate(dataset)
        g = self.getOrDefault
        data_dir, has_validation = self.write_data(dataset)
        spec = self.rank_spec(str(local_path(join(data_dir, "train"))),
                              str(local_path(join(data_dir, "validation"))) if has_validation else None)
        rank_results = self.run_ranks(dataset, train_rank, spec)
        model = KerasModel(modelPath=spec.output_model, featuresCol=g(self.featuresCol),
                           inputShape=g(self.inputShape), predictionCol=g(self.predictionCol),
                           batchSize=scoring_batch_size(spec.training))
        model.summary = KerasTrainingSummary(history=rank_results[0]["history"], rank_results=rank_results)
        return model

    def run_ranks(self, dataset: DataFrame, train_fn, spec) -> list[dict]:
        """``train_fn(spec)`` on ``numProc`` ranks (Spark tasks) of the estimator's backend; their reports sorted
        by rank. Rank 0's progress lines are printed as they come, the ranks' output goes to the work directory's
        ranks.log, and a failure is one :class:`DistributedFitError` line. ``spec`` needs ``checkpoint_dir`` and
        ``training``."""
        g = self.getOrDefault
        num_proc = g(self.numProc)
        env = {**os.environ, **verbosity_environment()}  # the ranks import TensorFlow: quiet unless --verbose
        local = dataset.sparkSession.sparkContext.master.startswith("local")
        progress = _ProgressPrinter(os.path.join(spec.checkpoint_dir, PROGRESS_LOG), enabled=g(self.showProgress))
        ranks_log = str(local_path(join(g(self.workDir), RANKS_LOG)))
        started = time.time()
        with progress, _RankOutput(ranks_log) as output:
            try:
                if g(self.backend) == "tf_distribute":
                    results = run_tf_distribute(dataset.sparkSession, train_fn, spec, num_proc, env, ranks_log,
                                                loopback=local)
                else:
                    results = _run_horovod(train_fn, spec, num_proc, env, output, local)
            except Exception as exc:  # not KeyboardInterrupt: the caller's Ctrl-C handling stays as it is
                raise fit_failure(exc, spec, num_proc, ranks_log, started) from exc
        return sorted(results, key=lambda r: r["rank"])


def _run_horovod(train_fn, spec, num_proc: int, env: dict, output, local: bool) -> list[dict]:
    import horovod.spark

    _signal_free_gloo_launch()
    _recording_rank_exits()
    _RANK_EXITS.codes = None
    _quiet_horovod_spark_thread()
    # Local mode: every Horovod service and Gloo on the loopback interface (horovod_network).
    nics = LoopbackNics(loopback_interfaces()) if local else None
    with horovod_services(loopback=local):
        return horovod.spark.run(train_fn, args=(spec,), num_proc=num_proc, use_gloo=True, env=env, verbose=0,
                                 stdout=output, stderr=output, nics=nics)


RANKS_LOG = "ranks.log"


class DistributedFitError(StoreError):
    """A distributed fit failed: a rank died (killed, out of memory, its executor lost) or raised. Exit code 4,
    worth a retry: the last epoch's checkpoint is kept and rerunning the same fit resumes from it."""


def fit_failure(exc: Exception, spec, num_proc: int, ranks_log: str, started: float) -> DistributedFitError:
    """One line: which rank failed and how, what a rerun resumes from, and where the ranks' output is."""
    text = str(exc)
    failed = re.search(r"Process name: (\S+)\s+Exit code: (-?\d+)", text)  # horovod.runner.gloo_run's message
    if isinstance(exc, RankFailure):  # a child process's return code: -N is always signal N
        killer = _signal_name(-exc.code if exc.code < 0 else 0)
        what = _rank_failed("tf_distribute", str(exc.rank), exc.code, killer, num_proc, ranks_log)
    elif failed:
        rank, code = _rank_that_died(failed.group(1), int(failed.group(2)))
        if code == -1:  # horovod.spark.driver.rsh: the connection to the rank's Spark task broke
            what = f"Horovod lost contact with rank {rank} of {num_proc} (its Spark task or executor died)"
        else:
            what = _rank_failed("Horovod", rank, code, _killing_signal(code), num_proc, ranks_log)
    else:
        what = f"the distributed fit failed: {_first_line(text) or type(exc).__name__}"
        spark_error = _spark_thread_error(started)
        what += f" ({spark_error})" if spark_error and "Spark job has failed" in text else ""
    state = read_checkpoint_state(spec.checkpoint_dir)
    if state is not None and not state.get("finished"):
        done = int(state["epoch"]) + 1
        resume = f"epochs 1-{done} of {spec.training.epochs} are checkpointed; rerun to resume from epoch {done + 1}"
    else:
        resume = "no epoch was checkpointed; a rerun starts from epoch 1"
    return DistributedFitError(f"{what}; {resume} (checkpoints {spec.checkpoint_dir}, ranks' output {ranks_log})")


def _rank_failed(backend: str, rank: str, code: int, killer: str, num_proc: int, ranks_log: str) -> str:
    """``killer``: the signal that ended the rank ("" if none), as the backend's exit codes say it."""
    if killer:
        return f"{backend} rank {rank} of {num_proc} was killed by {killer} (exit code {code})"
    said = _last_error_line(ranks_log, rank)
    return f"{backend} rank {rank} of {num_proc} exited with code {code}" + (f": {said}" if said else "")


def _killing_signal(code: int) -> str:
    """The signal a rank's exit code says it was killed by ("" if none): -N from a process, 128+N from a shell."""
    return _signal_name(-code if code < -1 else code - 128 if code > 128 else 0)


def _rank_that_died(rank: str, code: int) -> tuple[str, int]:
    """Horovod names the first rank seen to exit non-zero; when one rank is killed, its peers fail their next
    allreduce at about the same moment and may be seen first. Name the killed rank then (every rank's exit code
    of this thread's last launch is kept by :func:`_recording_rank_exits`)."""
    exits = getattr(_RANK_EXITS, "codes", None) or {}
    if _killing_signal(code):
        return rank, code
    killed = sorted((name, other) for name, other in exits.items() if _killing_signal(other))
    return killed[0] if killed else (rank, code)


_RANK_EXITS = threading.local()


def _recording_rank_exits() -> None:
    """Keep every rank's exit code of a launch (Horovod's error names only the first seen) for this thread."""
    from horovod.runner.util import threads

    execute = threads.execute_function_multithreaded
    if getattr(execute, "records_rank_exits", False):
        return

    def recording(fn, args_list, block_until_all_done=True, max_concurrent_executions=1000):
        results = execute(fn, args_list, block_until_all_done, max_concurrent_executions)
        exits = {str(name): value[0] for name, value in (results or {}).items()
                 if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)}
        if exits and len(exits) == len(results):  # gloo_run's launch: (exit code, timestamp) per rank
            _RANK_EXITS.codes = exits
        return results

    recording.records_rank_exits = True
    threads.execute_function_multithreaded = recording


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name if number else ""
    except ValueError:
        return ""


def _first_line(text: str, limit: int = 300) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")[:limit]


def _last_error_line(ranks_log: str, rank: str, limit: int = 300) -> str:
    """The last line rank ``rank`` wrote to stderr in this fit (the exception of a traceback)."""
    prefix = f"[{rank}]<stderr>:"
    try:
        with open(ranks_log, errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    lines = [line[len(prefix):].strip() for line in text[text.rfind(_RankOutput.HEADER):].splitlines()
             if line.startswith(prefix) and line[len(prefix):].strip()]
    return lines[-1][:limit] if lines else ""


class _RankOutput:
    """The ranks' stdout and stderr, which Horovod streams to the driver with every line prefixed
    ``[rank]<stdout|stderr>:``, appended to a log in the work directory: a failing rank's traceback is kept
    there rather than spilled on the console, and the fit's error names the file. One stream per rank and
    kind, each from its own thread: lines are written whole."""

    HEADER = "--- fit started "

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.pending: dict[int, str] = {}
        self.handle = None

    def __enter__(self) -> "_RankOutput":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.handle = open(self.path, "a", encoding="utf-8")
        self.handle.write(f"{self.HEADER}{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        self.handle.flush()
        return self

    def write(self, text: str) -> int:
        with self.lock:
            if self.handle is None:  # a stream still draining after the fit ended
                return len(text)
            key = threading.get_ident()
            buffered = self.pending.pop(key, "") + text
            complete, _, rest = buffered.rpartition("\n")
            if rest:
                self.pending[key] = rest
            if complete:
                self.handle.write(complete + "\n")
                self.handle.flush()
        return len(text)

    def flush(self) -> None:
        pass

    def __exit__(self, *exc_info) -> None:
        with self.lock:
            for rest in self.pending.values():
                self.handle.write(rest + "\n")
            self.handle.close()
            self.handle = None


_SPARK_THREAD_ERRORS: list[tuple[float, str]] = []


def _in_horovod_spark_thread(tb) -> bool:
    return any(frame.f_code.co_name == "run_spark" and frame.f_code.co_filename.endswith(
        os.path.join("horovod", "spark", "runner.py")) for frame, _ in traceback.walk_tb(tb))


def _quiet_horovod_spark_thread() -> None:
    """When a rank fails, Horovod cancels the Spark job of its tasks, and the thread waiting on that job dies
    printing the cancellation's Py4J stack trace; horovod.spark.run raises the failure itself in the caller,
    which reports it in one line. Keep that thread's error (a fit whose Spark job failed names it) instead of
    printing it; every other thread's exception is printed as before."""
    previous = threading.excepthook
    if getattr(previous, "horovod_quiet", False):
        return

    def excepthook(args):
        if args.exc_traceback is not None and _in_horovod_spark_thread(args.exc_traceback):
            java = getattr(args.exc_value, "java_exception", None)
            _SPARK_THREAD_ERRORS.append((time.time(), _first_line(java.toString() if java is not None
                                                                  else args.exc_value)))
            del _SPARK_THREAD_ERRORS[:-10]
            return
        previous(args)

    excepthook.horovod_quiet = True
    threading.excepthook = excepthook


def _spark_thread_error(since: float) -> str:
    return next((error for at, error in reversed(_SPARK_THREAD_ERRORS) if at >= since), "")


class _ProgressPrinter:
    """While a fit runs, print the lines rank 0 appends to its progress log (one per epoch): long fits are not
    silent. Lines already there (an earlier, resumed fit) are skipped."""

    def __init__(self, path: str, enabled: bool = True, prefix: str = "  ") -> None:
        self.path, self.enabled, self.prefix = path, enabled, prefix
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="keras-progress", daemon=True)

    def __enter__(self) -> "_ProgressPrinter":
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.enabled:
            self.done.set()
            self.thread.join()

    def _follow(self) -> None:
        while not self.done.wait(0.5):
            self._print_new_lines()
        self._print_new_lines()

    def _print_new_lines(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path) as handle:
            handle.seek(self.offset)
            text = handle.read()
        complete = text[:text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            print(self.prefix + line, flush=True)


def _signal_free_gloo_launch() -> None:
    """Horovod's Gloo launcher installs SIGINT/SIGTERM handlers at every launch and never restores them: that
    fails off the main thread (search trials fit from driver threads) and, on it, leaves Ctrl-C swallowed for
    the rest of the process. Its handler only sets a shutdown flag, so hand out plain flags instead; on Ctrl-C
    the caller cancels the Spark jobs, which ends the ranks."""
    from horovod.runner import gloo_run

    if getattr(gloo_run.register_shutdown_event, "signal_free", False):
        return

    def register_shutdown_event():
        return threading.Event()

    register_shutdown_event.signal_free = True
    gloo_run.register_shutdown_event = register_shutdown_event


def _task_slots(dataset: DataFrame | None) -> int:
    # The active session is per thread (search trials run in driver threads): prefer the data's session.
    spark = dataset.sparkSession if dataset is not None else SparkSession.builder.getOrCreate()
    return spark.sparkContext.defaultParallelism


_LOADED: dict[str, object] = {}


def _load_once(path: str):
    """One model per Python worker process, reused by every batch and task it scores (safe loading)."""
    if path not in _LOADED:
        configure_verbosity()  # before TensorFlow loads in this Python worker: the run's verbosity (quiet)
        _LOADED[path] = load_keras_model(path)
    return _LOADED[path]


EMBEDDED_MODEL_FILE = "model.keras"


class _KerasModelWriter(DefaultParamsWriter):
    """Params plus a copy of the Keras file in the saved directory: a saved pipeline is self-contained."""

    def saveImpl(self, path: str) -> None:
        source = self.instance.getOrDefault(self.instance.modelPath)
        params = {param.name: value for param, value in self.instance._paramMap.items()}
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession,
                                         paramMap={**params, "modelPath": EMBEDDED_MODEL_FILE})
        HadoopFS(self.sparkSession).copy_from_local(source, join(path, EMBEDDED_MODEL_FILE))


class _KerasModelReader(DefaultParamsReader):
    def load(self, path: str):
        model = super().load(path)
        if model.getOrDefault(model.modelPath) == EMBEDDED_MODEL_FILE:
            # TensorFlow opens local files: the store must be mounted where the executors run.
            model.set(model.modelPath, str(local_path(join(path, EMBEDDED_MODEL_FILE))))
        return model


class KerasModel(Model, _KerasParams, DefaultParamsReadable, DefaultParamsWritable):
    """Scores with a vectorised pandas UDF: Arrow batches -> one batched ``model.predict`` each.

    Saved (alone or inside a ``PipelineModel``) with a copy of its Keras file, so the saved directory is
    self-contained."""

    modelPath = Param(Params._dummy(), "modelPath", "Keras model file (shared store)", TypeConverters.toString)
    batchSize = Param(Params._dummy(), "batchSize", "rows per predict call", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, modelPath=None, featuresCol="features", inputShape=None, predictionCol="prediction",
                 batchSize=256):
        super().__init__()
        self._setDefault(featuresCol="features", predictionCol="prediction", batchSize=256)
        self._set(**self._input_kwargs)
        self.summary = KerasTrainingSummary()  # set by the fit that made this model; empty once loaded

    def write(self):
        return _KerasModelWriter(self)

    @classmethod
    def read(cls):
        return _KerasModelReader(cls)

    def keras_model(self):
        return _load_once(self.getOrDefault(self.modelPath))

    def _transform(self, dataset: DataFrame) -> DataFrame:
        path = self.getOrDefault(self.modelPath)
        if os.path.exists(path):  # refused here in one line, not in every task (executors check it again)
            check_keras_file(path)
        shape = tuple(self.getOrDefault(self.inputShape))
        batch_size = self.getOrDefault(self.batchSize)

        @F.pandas_udf(T.ArrayType(T.FloatType()))
        def predict(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            model = _load_once(path)
            for batch in batches:
                inputs = np.stack(batch.to_numpy()).astype("float32").reshape((len(batch), *shape))
                outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
                yield pd.Series(list(outputs.reshape(len(batch), -1)))

        return dataset.withColumn(self.getOrDefault(self.predictionCol), predict(self.getOrDefault(self.featuresCol)))
