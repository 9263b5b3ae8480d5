"""Reporting a search trial's progress from inside training, in another process than the search's driver.

Keras trials run their epochs inside Horovod ranks (Spark tasks), not in the search driver. Rank 0 opens
the same study storage (a journal file is safe across processes; an RDB URL works from any host), reports
each epoch's validation metric to the trial and asks the pruner; the decision is shared with every rank.
This module depends on Optuna and :mod:`spark_ml_pipeline.studies` only (no Spark), so the ranks can import it.
"""
from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import Trial

from spark_ml_pipeline.studies.pruners import make_pruner
from spark_ml_pipeline.studies.storage import open_storage_at


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
