"""Optuna storages and pruners by name, and reporting a trial's progress from another process.

Keras trials run their epochs inside Horovod ranks (Spark tasks), not in the search driver. Rank 0 opens
the same study storage (a journal file is safe across processes; an RDB URL works from any host), reports
each epoch's validation metric to the trial and asks the pruner; the decision is shared with every rank.
This module depends on Optuna only (no Spark), so the rank processes can import it.
"""
from __future__ import annotations

import importlib.util
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import optuna
from optuna.storages._rdb import models as rdb_models
from optuna.trial import Trial, TrialState


def is_rdb_url(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def redacted(location: str) -> str:
    """A storage URL fit for logs and MLflow parameters: its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", location)


def rdb_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) with the installed driver: SQLAlchemy 2.1 maps a bare
    ``postgresql://`` to psycopg 3; the project's driver is psycopg2 (``psycopg2-binary``)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare) and importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


class HeartbeatRDBStorage(optuna.storages.RDBStorage):
    """An RDB storage whose stale trials also include RUNNING trials that never recorded a heartbeat and started
    more than the grace period ago. ``Study.ask`` makes a trial RUNNING before its first heartbeat (Optuna's
    ``optimize`` and this project's search alike); a driver killed in between left a trial Optuna's check
    skips forever, and the other drivers waited for it to finish."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        # Optuna stores datetime_start as naive UTC from the asking client's clock
        started_before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=self.grace_period)
        session = self.scoped_session()
        try:
            silent = (session.query(rdb_models.TrialModel.trial_id)
                      .filter(rdb_models.TrialModel.study_id == study_id,
                              rdb_models.TrialModel.state == TrialState.RUNNING,
                              rdb_models.TrialModel._datetime_start_utc < started_before,
                              ~rdb_models.TrialModel.heartbeats.any())
                      .all())
        finally:
            session.close()
        return stale + [trial_id for (trial_id,) in silent if trial_id not in stale]


def open_storage_at(location: str, heartbeat_seconds: int | None = None, on_stale=None):
    """An RDB URL, or the path of a journal file (``file://`` prefix optional).

    ``heartbeat_seconds`` (RDB only): running trials record a heartbeat that often (the search does it,
    see ``tune.search.Heartbeat``); a trial silent for 3 intervals is stale: ``optuna.storages.fail_stale_trials``
    fails it and calls ``on_stale(study, frozen_trial)``."""
    if is_rdb_url(location):
        if heartbeat_seconds is None:
            return optuna.storages.RDBStorage(rdb_url(location), engine_kwargs={"pool_pre_ping": True})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
            return HeartbeatRDBStorage(rdb_url(location), engine_kwargs={"pool_pre_ping": True},
                                       heartbeat_interval=int(heartbeat_seconds),
                                       grace_period=3 * int(heartbeat_seconds),
                                       heartbeat_stale_trial_callback=on_stale)
    path = location[len("file://"):] if location.startswith("file://") else location
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def make_pruner(name: str, startup_trials: int = 3):
    """``median``: stop a trial whose intermediate value is worse than the median of earlier trials at the
    same step (after ``startup_trials`` finished trials); ``successive_halving``; ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r} (median, successive_halving, none)")


@dataclass(frozen=True)
class RemoteTrial:
    """Picklable handle on a running trial: where its study lives and what to report."""

    storage: str
    study_name: str
    trial_id: int
    metric: str  # the Keras log key reported each epoch, e.g. "val_accuracy"
    pruner: str = "median"
    pruner_startup_trials: int = 3

    def open(self):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=self.study_name, storage=open_storage_at(self.storage),
                                  pruner=make_pruner(self.pruner, self.pruner_startup_trials))
        return Trial(study, self.trial_id)

    def report(self, trial, step: int, logs: dict) -> bool:
        """Report ``logs[metric]`` at ``step``; True when the pruner says stop."""
        if self.metric not in logs:
            raise KeyError(f"trial reporting: the epoch logs have no {self.metric!r} (have: {', '.join(logs)})")
        trial.report(float(logs[self.metric]), step)
        return bool(trial.should_prune())


class Pruned(Exception):
    """Raised by a tuner when the pruner stopped its trial; ``attrs`` are what the trial recorded so far."""

    def __init__(self, message: str, attrs: dict | None = None) -> None:
        super().__init__(message)
        self.attrs = attrs or {}


@dataclass
class TrialContext:
    """What a tuner's ``fit_trial`` gets besides the trial's configuration.

    ``report(step, value)`` reports in the driver (raises :class:`Pruned` when pruned); ``remote`` lets another
    process (a Horovod rank) report instead. ``work_key`` names the trial's working directory and is shared by
    a trial and its retries, so a retried Keras trial resumes from the crashed one's checkpoint."""

    number: int
    work_key: int
    workers: int  # XGBoost workers or Horovod ranks of this trial
    threads_per_worker: int
    report: object  # Callable[[int, float], None]
    remote: RemoteTrial
