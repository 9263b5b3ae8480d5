"""The tuner: what a pipeline's search fits, as the search (:mod:`spark_ml_pipeline.tune.search`) drives it.

A pipeline declares a tuner factory (``PipelineDefinition.tuner``: ``(spark, config) -> Tuner``); the library's
tuners are :mod:`spark_ml_pipeline.tune.xgboost_tuner`, :mod:`~spark_ml_pipeline.tune.keras_tuner` and
:mod:`~spark_ml_pipeline.tune.gan_tuner`. :class:`TrialContext` is what a trial's fit gets besides its
configuration; :class:`Pruned` is how a fit says the pruner stopped it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from spark_ml_pipeline.train.trial_reporting import RemoteTrial


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
    report: Callable[[int, float], None]
    remote: RemoteTrial


@runtime_checkable
class Tuner(Protocol):
    """A pipeline's search: the objective, how a trial fits, and how the best is refit and judged.

    ``metric`` / ``direction``: the validation objective; ``test_metric`` / ``test_direction``: what the refit
    and the champion are judged by (final once :meth:`prepare` has run); ``curve_metrics``: the (train,
    validation) curves a trial logs; ``worker_noun``: what a trial's workers are called; ``budget_attr`` /
    ``budget_name``: the trial attribute of its best budget and the budget's unit (``best_rounds`` / ``rounds``);
    ``param_sections``: the configuration sections logged for the refit."""

    metric: str
    direction: str
    test_metric: str
    test_direction: str
    curve_metrics: tuple[str, str]
    worker_noun: str
    budget_attr: str
    budget_name: str
    param_sections: tuple[str, ...]

    def prepare(self) -> dict:
        """Before the first trial: read and prepare the data every trial shares; returns row counts."""

    def fit_trial(self, trial_config: Any, context: TrialContext) -> dict:
        """One trial: ``{"value": objective, ...attributes, "curves": {name: values}}``; raises :class:`Pruned`
        when the pruner stopped it."""

    def refit(self, best_config: Any, best_attrs: dict) -> tuple[Any, dict]:
        """The best configuration on train + validation: (Spark ML model, test metrics)."""

    def evaluate(self, model_uri: str) -> float:
        """The test metric of a committed model (e.g. the current champion) on this search's test split."""
