"""Test-only hooks of the Horovod rank functions, switched on by environment variables that only tests set.

The estimators carry no test Params: a test sets a variable in the driver's environment, the ranks inherit it
(:meth:`~spark_ml_pipeline.train.keras_estimator.KerasEstimator.run_ranks` hands the driver's
environment to every rank), and only the rank functions read it. Production never sets them; unset, every hook
is off and costs nothing.

Spark-free: read inside the rank processes.
"""
from __future__ import annotations

import hashlib
import os
import signal
from dataclasses import dataclass
from typing import Mapping

import numpy as np

# An epoch number N (0-based): the last rank SIGKILLs itself two steps into epoch N, as on a lost executor.
KILL_RANK_IN_EPOCH = "SPARK_ML_PIPELINE_TEST_KILL_RANK_IN_EPOCH"
# "1": every rank reports a hash of its final weights (the ranks' weights are identical, or the fit is wrong).
RECORD_WEIGHTS_DIGEST = "SPARK_ML_PIPELINE_TEST_RECORD_WEIGHTS_DIGEST"
KILL_AT_STEP = 2


@dataclass(frozen=True)
class RankTestHooks:
    kill_in_epoch: int | None = None
    record_weights_digest: bool = False

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] = os.environ) -> "RankTestHooks":
        kill = environment.get(KILL_RANK_IN_EPOCH)
        return cls(kill_in_epoch=int(kill) if kill else None,
                   record_weights_digest=environment.get(RECORD_WEIGHTS_DIGEST) == "1")

    def before_step(self, epoch: int, step: int, rank: int, size: int) -> None:
        if self.kill_in_epoch == epoch and step == KILL_AT_STEP and rank == size - 1:
            os.kill(os.getpid(), signal.SIGKILL)

    def weights_digest(self, model) -> str | None:
        """A hash of ``model``'s weights when recording is on, else None."""
        if not self.record_weights_digest:
            return None
        digest = hashlib.sha256()
        for weight in model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()
