"""Heartbeats of running trials in a shared (RDB) study: recording them while a trial fits, and failing the
trials whose heartbeat stopped (their driver died)."""
from __future__ import annotations

import threading
import warnings

import optuna

from spark_ml_pipeline.studies.optuna_internals import storage_of, trial_id_of


class Heartbeat:
    """Records a running trial's heartbeat every ``interval`` seconds from a thread of its own, while the trial
    fits (``Study.optimize`` does the same around the objective; an ask/tell loop must do it itself)."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage_of(study), trial_id_of(trial), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.trial_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a database hiccup: try again next period (3 periods of grace)
                pass

    def start(self) -> "Heartbeat":
        self.storage.record_heartbeat(self.trial_id)  # at once: a trial without one is never found stale
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def fail_stale(study: optuna.Study) -> None:
    """Fail RUNNING trials whose heartbeat stopped (RDB storages; no-op for a journal); the storage's
    stale-trial callback re-queues them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
