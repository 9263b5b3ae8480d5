"""Parallel, resumable hyperparameter search (Optuna) for any pipeline with a tuner; the best is promoted.

* The space is the pipeline's ``tune.space`` (see :mod:`spark_ml_pipeline.tune.search_space`); the objective is the
  pipeline's validation metric with its direction (taxi_fare: ``validation_rmse``, minimize; the Keras
  pipelines: the ``objective`` of their ``TUNING``, e.g. fashion_mnist ``val_accuracy``, maximize).
  Tuners (their contract: :class:`spark_ml_pipeline.tune.tuner.Tuner`): :mod:`spark_ml_pipeline.tune.xgboost_tuner`
  (pruned on rungs of rounds) and :mod:`spark_ml_pipeline.tune.keras_tuner` (Horovod fits, pruned per epoch by
  rank 0).
* The study lives in the shared store: ``<store root>/optuna/<study>.journal`` (or ``tune.storage``, an
  RDB URL), named ``<pipeline>-<hash of the search definition>``; re-running the same command resumes it.
  COMPLETE + PRUNED trials count against ``tune.n_trials`` across restarts (and across drivers).
  A journal file: one driver per study; trials left RUNNING by a crash are marked FAILED at start-up and
  their parameters re-queued. An RDB storage (``tune.storage=postgresql://...``, see docs/store.md): any
  number of drivers on one study; each running trial records a heartbeat every ``tune.heartbeat_seconds``
  (:class:`Heartbeat`), and a trial silent for 3 periods (its driver died) is failed by whichever driver
  asks for a trial next (``optuna.storages.fail_stale_trials``) and its parameters are re-queued; nothing is
  failed at start-up, since RUNNING trials may belong to live drivers.
* ``tune.parallelism`` trials run at once from driver threads, each in its own Spark scheduler pool
  (``trial-<i>``) and job group, each fitting on ``max(1, slots // parallelism)`` XGBoost workers or
  Horovod ranks.
* Every trial is an MLflow child run of the search's parent run (logged through ``MlflowClient``).
* At the end the best configuration is refit on train + validation, evaluated on test, registered, and
  given the ``champion`` alias only if it beats the current champion on the same test split.
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from spark_ml_pipeline.runtime.contracts import unmet
from spark_ml_pipeline.runtime.database_urls import is_rdb_url, redacted
from spark_ml_pipeline.runtime.discovery import Factory
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import local_path, short_digest
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.store.registry import better, promote_if_better, registry_description, verdict
from spark_ml_pipeline.store.tracking import PREFLIGHT_TIMEOUT, Store, check_database, check_store, flatten
from spark_ml_pipeline.studies.heartbeat import Heartbeat, fail_stale
from spark_ml_pipeline.studies.optuna_internals import storage_of, trial_id_of
from spark_ml_pipeline.studies.pruners import make_pruner as pruner_named
from spark_ml_pipeline.studies.storage import open_storage_at
from spark_ml_pipeline.train.trial_reporting import RemoteTrial
from spark_ml_pipeline.tune import search_space
from spark_ml_pipeline.tune.report import HISTORY_PNG, write_report
from spark_ml_pipeline.tune.trials import format_table, top_trials
from spark_ml_pipeline.tune.tuner import Pruned, TrialContext, Tuner

PARENT_RUN_ATTR = "mlflow_parent_run_id"
# What defines a search (its study name hashes these); budget, parallelism, timeout and storage do not.
SEARCH_DEFINING_TUNE_KEYS = ("sampler", "seed", "space", "budgets")
NOT_SEARCH_DEFINING = {"spark", "store", "compute", "run_date", "tune", "registry"}
# Study.ask() warns when the storage has a heartbeat: it does not record one. Search does (Heartbeat, per trial).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


# --- study: name, storage, sampler, pruner, crash recovery --------------------------------------------

def search_hash(config) -> str:
    definition = config.model_dump(mode="json", exclude=NOT_SEARCH_DEFINING)
    tune = config.tune.model_dump(mode="json")
    definition["tune"] = {k: tune[k] for k in SEARCH_DEFINING_TUNE_KEYS}
    return short_digest(definition)


def study_name(config) -> str:
    return config.tune.study_name or f"{config.pipeline}-{search_hash(config)}"


def optuna_dir(config) -> Path:
    try:
        return local_path(config.store.root_uri) / "optuna"
    except ValueError:
        raise ConfigError(f"store.root={config.store.root} is not a local path: set tune.storage to a journal "
                          "file on a shared filesystem or an RDB URL (e.g. postgresql://...)") from None


def journal_path(config) -> Path:
    storage = config.tune.storage
    if storage and not is_rdb_url(storage):
        return Path(storage[len("file://"):] if storage.startswith("file://") else storage)
    return optuna_dir(config) / f"{study_name(config)}.journal"


def storage_location(config) -> str:
    """The RDB URL or the journal file's path: what every process of the search (ranks too) opens."""
    if config.tune.storage and is_rdb_url(config.tune.storage):
        return config.tune.storage
    return str(journal_path(config))


def is_shared(config) -> bool:
    """An RDB storage: several drivers may run trials of the study at once (heartbeats, no start-up sweep)."""
    return is_rdb_url(storage_location(config))


def open_storage(config, on_stale=None):
    """The study's storage; an RDB storage with the heartbeat on (``tune.heartbeat_seconds``, grace 3x) and
    ``on_stale(study, frozen_trial)`` called for each trial it fails as stale."""
    location = storage_location(config)
    if not is_rdb_url(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return open_storage_at(location)
    return open_storage_at(location, heartbeat_seconds=config.tune.heartbeat_seconds, on_stale=on_stale)


def preflight(config) -> None:
    """Before Spark starts: the store root takes files, the tracking store answers, and an RDB study storage
    accepts a connection, each within a few seconds (else a StoreError naming it, exit code 4)."""
    check_store(config.store)
    location = storage_location(config)
    if is_rdb_url(location):
        check_database(location, PREFLIGHT_TIMEOUT, "study storage (tune.storage)")


def driver_id() -> str:
    """This search process, as recorded on its trials (user attribute ``driver``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _requeue(study, trial, tracking=None) -> bool:
    """Queue a failed trial's parameters again; the retry keeps its working directory (``work_of``), so a
    Keras retry resumes the failed trial's checkpoint. Its MLflow run is marked KILLED. A trial that died before
    drawing parameters has nothing to retry (the budget's next trial draws afresh): False."""
    if trial.params:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "work_of": work_key(trial)})
    run_id = trial.user_attrs.get("mlflow_run_id")
    if tracking is not None and run_id:
        try:
            tracking.set_terminated(run_id, "KILLED")
        except Exception:  # the run may never have been created
            pass
    return bool(trial.params)


def make_sampler(config, resumed_trials: int = 0):
    """The sampler; on resume its seed moves on by the trials already made, so a restarted random or TPE
    start-up phase does not replay the first run's proposals."""
    tune = config.tune
    seed = tune.seed + resumed_trials
    if tune.sampler == "grid":
        return optuna.samplers.GridSampler(search_space.grid_space(tune.space), seed=seed)
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar is "experimental"
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          constant_liar=tune.parallelism > 1 or is_rdb_url(storage_location(config)),
                                          n_startup_trials=5)


def make_pruner(config):
    return pruner_named(config.tune.pruner, config.tune.pruner_startup_trials)


def open_study(config, direction: str, tracking=None, progress: Callable[[str], None] | None = None):
    """Create or resume the study. A journal: trials a crash left RUNNING become FAILED and are queued again.
    An RDB storage: only stale trials (no heartbeat for 3 periods) are, now and whenever a trial is asked for;
    ``progress`` hears about those failed later. Returns the study and the trial numbers recovered now."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recovered: list[int] = []
    opening = True

    def on_stale(study, trial) -> None:
        queued = _requeue(study, trial, tracking)
        if opening:
            recovered.append(trial.number)
        elif progress is not None:
            retry = "queued again" if queued else "it had drawn no parameters: nothing to queue"
            progress(f"trial {trial.number:3d} of driver {trial.user_attrs.get('driver', '?')} went silent (no "
                     f"heartbeat for {3 * config.tune.heartbeat_seconds} s): marked FAILED, {retry}")

    study = optuna.create_study(study_name=study_name(config), storage=open_storage(config, on_stale),
                                sampler=make_sampler(config), pruner=make_pruner(config),
                                direction=direction, load_if_exists=True)
    if study.trials:
        study.sampler = make_sampler(config, resumed_trials=len(study.trials))
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study {study.study_name} was created to {study.direction.name.lower()}, "
                          f"the metric now asks to {direction}")
    if is_shared(config):  # RUNNING trials may be other drivers' live ones: only the stale are failed
        fail_stale(study)
        opening = False
        return study, recovered
    opening = False
    for orphan in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage_of(study).set_trial_user_attr(trial_id_of(orphan), "orphaned", True)  # before: FAIL is final
        storage_of(study).set_trial_state_values(trial_id_of(orphan), TrialState.FAIL)
        _requeue(study, orphan, tracking)
        recovered.append(orphan.number)
    return study, recovered


def work_key(trial) -> int:
    """The trial whose working directory this trial uses: its own, or the crashed trial it retries."""
    return int(trial.user_attrs.get("work_of", trial.number))


def finished_count(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


# --- the search ---------------------------------------------------------------------------------------

@dataclass
class TuneResult:
    study_name: str
    storage: str
    parent_run_id: str
    status: str  # "finished" | "interrupted" | "timeout" | "failed"
    finished: int
    budget: int
    seconds: float
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    recovered: list = field(default_factory=list)
    test_value: float | None = None
    champion_value: float | None = None
    promoted: bool | None = None
    model_version: str | None = None
    report: str | None = None
    top: list = field(default_factory=list)


class Search:
    """``parallelism`` driver threads run ask -> fit -> tell until the budget, the timeout or Ctrl-C."""

    def __init__(self, spark, config, tuner: Tuner, study, tracking, experiment_id: str, parent_run_id: str,
                 progress: Callable[[str], None]) -> None:
        self.spark, self.config, self.tuner, self.study = spark, config, tuner, study
        self.tracking, self.experiment_id, self.parent_run_id = tracking, experiment_id, parent_run_id
        self.progress = progress
        self.k = config.tune.parallelism
        slots = spark.sparkContext.defaultParallelism
        self.num_workers = max(1, slots // self.k)
        # Threads per XGBoost worker / Horovod rank so that k trials x workers fill the cores, not more.
        self.threads = max(1, slots // (self.k * self.num_workers))
        self.shared = is_shared(config)  # other drivers may run trials of this study at once
        self.driver = driver_id()
        self.budget = config.tune.n_trials
        if config.tune.sampler == "grid":
            self.budget = min(self.budget, search_space.grid_size(config.tune.space))
        self.done_before = finished_count(study)
        self.done = self.done_before
        self.in_flight = 0
        self.failures = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.interrupted = False
        self.timed_out = False
        self.running: dict[int, str] = {}  # trial number -> Spark job group
        self.started = time.time()
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.best = min(complete, key=lambda t: t.value if self._minimize else -t.value) if complete else None

    @property
    def _minimize(self) -> bool:
        return self.tuner.direction == "minimize"

    def _claim(self) -> bool:
        while True:
            with self.lock:
                timeout = self.config.tune.timeout
                if timeout is not None and time.time() - self.started >= timeout:
                    self.timed_out = True
                    self.stop.set()
                if self.stop.is_set() or self.failures >= self.config.tune.max_failures:
                    return False
                if not self.shared:
                    if self.done + self.in_flight >= self.budget:
                        return False
                    self.in_flight += 1
                    return True
                # Several drivers: the budget counts every driver's finished trials and running ones.
                fail_stale(self.study)  # a dead driver's trials: failed and queued again
                trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                        TrialState.RUNNING))
                self.done = sum(t.state != TrialState.RUNNING for t in trials)
                elsewhere = sum(t.state == TrialState.RUNNING and t.number not in self.running for t in trials)
                if self.done + self.in_flight + elsewhere < self.budget:
                    self.in_flight += 1
                    return True
                if self.done >= self.budget or not elsewhere:
                    return False
            # Other drivers' trials may finish the budget, or die (then their trials are queued again): wait.
            if self.stop.wait(min(2.0, self.config.tune.heartbeat_seconds / 2)):
                return False

    def run(self) -> None:
        # Each thread sets its own flag when it has recorded its last trial. The main thread waits on those
        # flags, not on Thread.join: a join cut short by Ctrl-C can leave the thread looking finished while it
        # still runs (CPython's join/KeyboardInterrupt race), and the process would exit under it.
        finished = [threading.Event() for _ in range(self.k)]
        threads = [threading.Thread(target=self._worker, args=(i, finished[i]), name=f"tune-trial-{i}", daemon=True)
                   for i in range(self.k)]
        for thread in threads:
            thread.start()
        try:
            while not all(flag.is_set() for flag in finished):
                time.sleep(0.2)
        except KeyboardInterrupt:
            self.interrupt()
            for flag in finished:
                flag.wait()

    def interrupt(self) -> None:
        self.progress("interrupted: cancelling running trials (they will be re-run on resume) ...")
        self.interrupted = True
        self.stop.set()
        with self.lock:
            groups = list(self.running.values())
        for group in groups:
            self.spark.sparkContext.cancelJobGroup(group)
        # Horovod runs its Spark job from a thread of its own, outside the trial's job group; every job of
        # this driver belongs to the search, so cancel them all.
        self.spark.sparkContext.cancelAllJobs()

    def _worker(self, index: int, finished: threading.Event) -> None:
        sc = self.spark.sparkContext
        sc.setLocalProperty("spark.scheduler.pool", f"trial-{index}")
        try:
            while self._claim():
                self._one_trial(sc)
        except BaseException as exc:  # never let a thread die silently
            self.progress(f"tuning thread {index} stopped: {type(exc).__name__}: {exc}")
            self.stop.set()
        finally:
            finished.set()

    def _one_trial(self, sc) -> None:
        config, space = self.config, self.config.tune.space
        with self.lock:  # the sampler sees every trial told so far (and, with constant_liar, those running)
            trial = self.study.ask()
            # at once: a trial RUNNING without a heartbeat is failed only after the grace period (HeartbeatRDBStorage)
            heartbeat = (Heartbeat(self.study, trial, config.tune.heartbeat_seconds).start()
                         if self.shared else None)
            try:
                group = f"tune-{self.study.study_name}-trial-{trial.number}"
                self.running[trial.number] = group
                trial.set_user_attr("driver", self.driver)
                values = search_space.suggest(trial, space, grid=config.tune.sampler == "grid")
            except BaseException:
                if heartbeat is not None:
                    heartbeat.stop()
                raise
        try:
            self._run_asked(sc, trial, values, group, heartbeat)
        finally:
            if heartbeat is not None:  # already stopped when the trial was told; not when something raised
                heartbeat.stop()

    def _run_asked(self, sc, trial, values: dict, group: str, heartbeat: "Heartbeat | None") -> None:
        config, space = self.config, self.config.tune.space
        started = time.time()
        sc.setJobGroup(group, f"trial {trial.number} of {self.study.study_name}", interruptOnCancel=True)
        run = self.tracking.create_run(self.experiment_id, run_name=f"trial-{trial.number}", tags={
            "mlflow.parentRunId": self.parent_run_id, "optuna.study": self.study.study_name,
            "optuna.trial": str(trial.number), "pipeline": config.pipeline})
        run_id = run.info.run_id
        trial.set_user_attr("mlflow_run_id", run_id)
        state, value, attrs, error = TrialState.FAIL, None, {}, None
        try:
            self.tracking.log_batch(run_id, params=[Param(k, str(v)) for k, v in values.items()] +
                                    [Param("num_workers", str(self.num_workers))])
            trial_config = search_space.apply(config, space, values)

            def report(step: int, intermediate: float) -> None:
                trial.report(intermediate, step)
                self.tracking.log_metric(run_id, self.tuner.metric, intermediate, step=step)
                if trial.should_prune():
                    raise Pruned(f"pruned at step {step} ({intermediate:.4f})")

            remote = RemoteTrial(storage=storage_location(config), study_name=self.study.study_name,
                                 trial_id=trial_id_of(trial), metric=self.tuner.metric, pruner=config.tune.pruner,
                                 pruner_startup_trials=config.tune.pruner_startup_trials)
            context = TrialContext(number=trial.number, work_key=work_key(trial), workers=self.num_workers,
                                   threads_per_worker=self.threads, report=report, remote=remote)
            attrs = self.tuner.fit_trial(trial_config, context)
            value, state = attrs["value"], TrialState.COMPLETE
        except Pruned as pruned:
            state, attrs = TrialState.PRUNED, dict(pruned.attrs)
        except Exception as exc:  # a failed trial is recorded and does not count against the budget
            error = f"{type(exc).__name__}: {exc}"
            if self.stop.is_set() and self.interrupted:
                error = "interrupted"
        finally:
            with self.lock:
                self.running.pop(trial.number, None)
        seconds = time.time() - started
        curves = attrs.pop("curves", {}) if attrs else {}
        for key, attr in attrs.items():
            if key != "value" and isinstance(attr, (int, float, str)):
                trial.set_user_attr(key, attr)
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("num_workers", self.num_workers)
        if error:
            trial.set_user_attr("error", error[:2000])
        # MLflow first: once the trial is told, a resumed search trusts it completely.
        now = int(time.time() * 1000)
        metrics = [Metric("duration_seconds", seconds, now, 0)]
        if state == TrialState.COMPLETE:
            metrics.append(Metric(self.tuner.metric, value, now, attrs.get(self.tuner.budget_name, 0)))
        for name, curve in curves.items():
            metrics += [Metric(name, float(v), now, step) for step, v in enumerate(curve, start=1)]
        for start in range(0, len(metrics), 900):
            self.tracking.log_batch(run_id, metrics=metrics[start:start + 900])
        self.tracking.set_tag(run_id, "optuna.state", state.name)
        if error:
            self.tracking.set_tag(run_id, "error", error[:5000])
        with self.lock:
            self.in_flight -= 1
            if heartbeat is not None:
                heartbeat.stop()
            # skip_if_finished: another driver may have failed this trial as stale (a stall longer than the
            # grace period); it has been queued again, and this result is dropped.
            if state == TrialState.COMPLETE:
                self.study.tell(trial, value, skip_if_finished=self.shared)
            elif state == TrialState.PRUNED:
                self.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=self.shared)
            else:
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=self.shared)
                if self.interrupted:  # re-run it on resume
                    self.study.enqueue_trial(values, user_attrs={"retry_of": trial.number,
                                                                 "work_of": work_key(trial)})
                else:
                    self.failures += 1
            if self.shared:
                self.done = finished_count(self.study)
            elif state in (TrialState.COMPLETE, TrialState.PRUNED):
                self.done += 1
            frozen = storage_of(self.study).get_trial(trial_id_of(trial))
            if state == TrialState.COMPLETE and (self.best is None or better(value, self.best.value,
                                                                              self.tuner.direction)):
                self.best = frozen
            self._print_progress(frozen, error)
        status = ("FINISHED" if state in (TrialState.COMPLETE, TrialState.PRUNED)
                  else "KILLED" if self.interrupted else "FAILED")
        self.tracking.set_terminated(run_id, status)

    def _print_progress(self, trial, error: str | None) -> None:
        elapsed = time.time() - self.started
        finished_here = self.done - self.done_before
        remaining = self.budget - self.done
        eta = elapsed / finished_here * remaining if finished_here else float("nan")
        if trial.state.name == "COMPLETE":
            what = f"{self.tuner.metric} {trial.value:.4f}"
        elif trial.state.name == "PRUNED":
            step = trial.last_step
            what = f"pruned at {step} ({trial.intermediate_values.get(step, float('nan')):.4f})"
        elif error == "interrupted":
            what = "interrupted: queued to run again on resume"
        else:
            what = f"FAILED ({error})"
        best = f"best {self.best.value:.4f} (#{self.best.number})" if self.best else "best -"
        self.progress(f"trial {trial.number:3d} {what} · {best} · {self.done}/{self.budget} done · "
                      f"{elapsed:5.0f} s elapsed · ETA {eta:4.0f} s")


def _parent_run(tracking, experiment_id: str, study, config) -> str:
    existing = study.user_attrs.get(PARENT_RUN_ATTR)
    if existing:
        try:
            run = tracking.get_run(existing)
            if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active":
                tracking.update_run(existing, status="RUNNING")
                return existing
        except MlflowException:
            pass
    run = tracking.create_run(experiment_id, run_name=f"tune-{study.study_name}", tags={
        "pipeline": config.pipeline, "optuna.study": study.study_name, "kind": "tune"})
    study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
    return run.info.run_id


def tune(spark, config, tuner_factory: Factory[Tuner] | None,
         progress: Callable[[str], None] | None = None) -> TuneResult:
    """Run (or resume) the search defined by ``config.tune``; refit, compare and promote the best.

    ``tuner_factory`` is the pipeline's declared tuner (``PipelineDefinition.tuner``)."""
    if tuner_factory is None:
        raise ConfigError(f"pipeline {config.pipeline!r} declares no tuner: it cannot be searched")
    progress = progress or (lambda line: print(line, flush=True))
    started = time.time()
    search_space.check_space(config)
    tuner = tuner_factory(spark, config)
    gaps = unmet(tuner, Tuner)
    if gaps:
        raise ConfigError(f"pipeline {config.pipeline!r}: its tuner does not meet the Tuner protocol "
                          f"(spark_ml_pipeline.tune.tuner): {'; '.join(gaps)}")
    store = Store(config.store)
    experiment_id = store.experiment_id(config.store.experiment or config.pipeline)
    tracking = MlflowClient(store.tracking_uri)
    study, recovered = open_study(config, tuner.direction, tracking, progress)
    storage = redacted(storage_location(config))  # what is printed and recorded: no password
    parent_run_id = _parent_run(tracking, experiment_id, study, config)
    tune_params = {f"tune.{k}": v for k, v in flatten(config.tune.model_dump(mode="json", exclude={"space"})).items()}
    if tune_params.get("tune.storage"):
        tune_params["tune.storage"] = redacted(tune_params["tune.storage"])
    existing_params = tracking.get_run(parent_run_id).data.params
    fresh = [Param(k, str(v)[:6000]) for k, v in tune_params.items() if k not in existing_params]
    if fresh:
        tracking.log_batch(parent_run_id, params=fresh)
    tracking.log_dict(parent_run_id, without_password(config).model_dump(mode="json"), "config.json")

    prefix = f"tune {study.study_name} · storage {storage}"
    progress(f"{prefix}\n  {finished_count(study)} of {config.tune.n_trials} trials already finished"
             + (f"; trials {recovered} were left running by a crash: marked FAILED, queued again" if recovered
                else "")
             + (f"\n  shared study: other drivers may join; a trial silent for {3 * config.tune.heartbeat_seconds} s "
                "is failed and queued again" if is_shared(config) else ""))
    status = "failed"
    search = None
    try:
        rows = tuner.prepare()
        search = Search(spark, config, tuner, study, tracking, experiment_id, parent_run_id, progress)
        progress(f"  {rows} · {search.k} trial(s) at once, {search.num_workers} {tuner.worker_noun}(s) each "
                 f"(slots {spark.sparkContext.defaultParallelism}) · sampler {config.tune.sampler} · "
                 f"pruner {config.tune.pruner}")
        search.run()
        status = ("interrupted" if search.interrupted else "timeout" if search.timed_out
                  else "failed" if search.failures >= config.tune.max_failures else "finished")
        top = top_trials(study, tuner.direction)
        progress(f"search {status}: {finished_count(study)}/{search.budget} trials finished · top trials:\n"
                 + format_table(top, tuner.metric, tuner.budget_attr, tuner.budget_name))
        result = TuneResult(study_name=study.study_name, storage=storage, parent_run_id=parent_run_id,
                            status=status, finished=finished_count(study), budget=search.budget,
                            seconds=0.0, recovered=recovered, top=[(t.number, t.value, t.params) for t in top])
        if top:
            best = top[0]
            result.best_number, result.best_value, result.best_params = best.number, best.value, dict(best.params)
            tracking.log_metric(parent_run_id, f"best_{tuner.metric}", best.value)
            tracking.set_tag(parent_run_id, "best_trial", str(best.number))
        if top and config.tune.promote and status != "interrupted":
            _promote(spark, config, tuner, study, top[0], tracking, experiment_id, parent_run_id, result, progress)
        if config.tune.report:
            report_path = optuna_dir_for_report(config, study.study_name) / "report.html"
            write_report(study, report_path, tuner=tuner, tracking=tracking, result=result)
            for written in (report_path, report_path.with_name(HISTORY_PNG)):  # MLflow previews the PNG
                if written.is_file():
                    tracking.log_artifact(parent_run_id, str(written))
            result.report = str(report_path)
            progress(f"report {report_path}")
        for key, value in (("trials_finished", result.finished), ("seconds", time.time() - started)):
            tracking.log_metric(parent_run_id, key, float(value))
        result.seconds = time.time() - started
        return result
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception:
        status = "failed"  # e.g. the refit's model could not be saved: not a finished search
        raise
    finally:
        tracking.set_tag(parent_run_id, "tune_status", status)
        tracking.set_terminated(parent_run_id, {"finished": "FINISHED", "timeout": "FINISHED",
                                                "interrupted": "KILLED"}.get(status, "FAILED"))


def without_password(config):
    """``config`` as recorded in MLflow: an RDB ``tune.storage`` without its password."""
    if not config.tune.storage:
        return config
    return config.model_copy(update={"tune": config.tune.model_copy(update={"storage": redacted(config.tune.storage)})})


def optuna_dir_for_report(config, name: str) -> Path:
    try:
        base = optuna_dir(config)
    except ConfigError:
        base = Path(tempfile.mkdtemp(prefix="tune-report-"))
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _promote(spark, config, tuner, study, best, tracking, experiment_id, parent_run_id, result, progress) -> None:
    """Refit the best on train + validation, test it, register it; move the alias only on improvement."""
    best_config = search_space.apply(config, config.tune.space, best.params)
    budget_attr, budget = next(((k, best.user_attrs[k]) for k in (tuner.budget_attr, "best_epochs", "best_rounds")
                                if k in best.user_attrs), (tuner.budget_attr, None))
    progress(f"refit trial {best.number} on train + validation ({budget_attr.removeprefix('best_')} {budget}) ...")
    with RunRecorder(spark, without_password(best_config), run_name=f"refit-trial-{best.number}",
                     tags={"mlflow.parentRunId": parent_run_id, "optuna.study": study.study_name,
                           "optuna.trial": str(best.number), "kind": "refit"}) as recorder:
        model, test_metrics = tuner.refit(best_config, best.user_attrs)
        recorder.log_config(tuner.param_sections, extra={budget_attr: budget})
        recorder.log_metrics(test_metrics)
        model_uri = recorder.commit_model(model)
    test_value = float(test_metrics[tuner.test_metric])
    outcome = promote_if_better(
        tracking, name=config.registered_model, alias=config.registry.alias,
        model_uri=model_uri, run_id=recorder.run_id, metric=tuner.test_metric, value=test_value,
        direction=tuner.test_direction, evaluate=tuner.evaluate, progress=progress,
        description=registry_description(config.pipeline, config.registry.alias),
        tags={"optuna.study": study.study_name, "optuna.trial": str(best.number)})
    tracking.log_metric(parent_run_id, tuner.test_metric, test_value)
    if outcome.champion_value is not None:
        tracking.log_metric(parent_run_id, f"champion_{tuner.test_metric}", outcome.champion_value)
    tracking.set_tag(parent_run_id, "promoted", str(outcome.promoted).lower())
    tracking.set_tag(parent_run_id, "model_version", outcome.version)
    result.test_value, result.champion_value = test_value, outcome.champion_value
    result.promoted, result.model_version = outcome.promoted, outcome.version


def summary(result: TuneResult) -> str:
    lines = [f"tune {result.study_name} · {result.status} · {result.finished}/{result.budget} trials · "
             f"{result.seconds:.0f} s · MLflow parent run {result.parent_run_id}"]
    if result.best_number is not None:
        lines.append(f"  best trial {result.best_number}: {result.best_value:.4f} {result.best_params}")
    if result.promoted is not None:
        lines.append(f"  test {result.test_value:.4f} · champion before "
                     f"{'-' if result.champion_value is None else f'{result.champion_value:.4f}'} · "
                     f"{verdict(result.promoted, result.model_version)}")
    if result.status == "interrupted":
        lines.append("  re-run the same command to resume the search")
    return "\n".join(lines)
