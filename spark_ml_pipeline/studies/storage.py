"""Opening an Optuna study storage by location: an RDB URL (any host, any number of drivers) or a journal file.

An RDB storage may record heartbeats: a running trial silent for 3 intervals is stale, and
``optuna.storages.fail_stale_trials`` fails it (see :mod:`spark_ml_pipeline.studies.heartbeat`).
"""
from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import optuna

from spark_ml_pipeline.runtime.database_urls import is_rdb_url, rdb_url
from spark_ml_pipeline.studies.optuna_internals import RDBStorageWithStaleHook, running_trial_ids_without_heartbeat


class HeartbeatRDBStorage(RDBStorageWithStaleHook):
    """An RDB storage whose stale trials also include RUNNING trials that never recorded a heartbeat and started
    more than the grace period ago. ``Study.ask`` makes a trial RUNNING before its first heartbeat (Optuna's
    ``optimize`` and this project's search alike); a driver killed in between left a trial Optuna's check
    skips forever, and the other drivers waited for it to finish."""

    def more_stale_trial_ids(self, study_id: int) -> list[int]:
        # Optuna stores datetime_start as naive UTC from the asking client's clock
        started_before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=self.grace_period)
        return running_trial_ids_without_heartbeat(self, study_id, started_before)


def open_storage_at(location: str, heartbeat_seconds: int | None = None, on_stale=None):
    """An RDB URL, or the path of a journal file (``file://`` prefix optional).

    ``heartbeat_seconds`` (RDB only): running trials record a heartbeat that often (the search does it,
    see :class:`spark_ml_pipeline.studies.heartbeat.Heartbeat`); a trial silent for 3 intervals is stale:
    ``optuna.storages.fail_stale_trials`` fails it and calls ``on_stale(study, frozen_trial)``."""
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
