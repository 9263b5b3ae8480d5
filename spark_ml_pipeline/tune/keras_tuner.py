"""The search tuner of the Keras pipelines: every trial is a Horovod fit whose rank 0 reports each epoch.

A pipeline declares how it is searched with a :class:`spark_ml_pipeline.train.deep_learning.Tuning` (its ingest and
prepare functions, the validation objective (a Keras epoch-log key such as ``val_accuracy``) and the test
metric the champion is judged by. The search space may set ``model.*`` and ``training.*`` keys (not the data
split): the prepared data is written to Parquet once and every trial's ranks read the same files.

Pruning happens inside the fit: rank 0 reports the rank-averaged validation metric to the trial in the
study's storage after every epoch and asks the pruner; a pruned trial stops on every rank at that epoch.
A trial's working directory (checkpoints) is keyed by its ``work_key``, shared with its retries, so a trial
re-run after a crash resumes from the crashed trial's last epoch.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from spark_ml_pipeline.runtime.errors import ConfigError, PipelineError
from spark_ml_pipeline.runtime.io import join, short_digest
from spark_ml_pipeline.runs.keras_run import judge, scoring_model
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR
from spark_ml_pipeline.tune.search_space import target_key
from spark_ml_pipeline.tune.tuner import Pruned, TrialContext

# Keys a trial may not change: they define the data every trial shares.
FIXED_TRAINING_KEYS = {"training.validation_fraction", "training.seed", "training.num_proc",
                       "training.threads_per_rank"}


def keras_tuner(tuning: dl.Tuning):
    """The tuner factory a Keras pipeline declares: ``tuner=keras_tuner(TUNING)``."""
    return lambda spark, config: KerasTuner(spark, config, tuning)


def trial_location(config, study_name: str, work_key: int) -> str:
    """A trial's working directory (checkpoints), shared with its retries so a retry resumes."""
    return config.store.data(config.pipeline, "tune", "trials", study_name, f"trial-{work_key}")


def best_epoch_attrs(history: dict, metric: str, direction: str, pruned_at_epoch: int | None,
                     what: str, **extra) -> dict:
    """A Keras trial's result from its per-epoch history: the best epoch's value, its curves; raises
    :class:`Pruned` (carrying the same attributes) when the pruner stopped the fit."""
    values = history.get(metric)
    if not values:
        raise PipelineError(f"{what}: the fit logged no {metric!r} (logged: {', '.join(history) or 'nothing'})")
    pick = min if direction == "minimize" else max
    best = pick(range(len(values)), key=values.__getitem__)
    attrs = {"value": values[best], "best_epochs": best + 1, "epochs": len(values), **extra,
             "curves": {f"epoch_{k}": v for k, v in history.items()}}
    if pruned_at_epoch:
        raise Pruned(f"pruned at epoch {pruned_at_epoch} ({values[-1]:.4f})", attrs)
    return attrs


class KerasTuner:
    """Search a Keras pipeline: distributed fits (the configured backend), per-epoch pruning from rank 0, refit of
    the best."""

    worker_noun = "rank"
    budget_attr, budget_name = "best_epochs", "epochs"
    param_sections = ("model", "training")

    def __init__(self, spark, config, tuning: dl.Tuning) -> None:
        self.spark, self.config, self.tuning = spark, config, tuning
        self.metric, self.direction = tuning.objective, tuning.direction
        self.test_metric, self.test_direction = f"test_{tuning.test_metric}", tuning.test_direction
        trained = self.metric.removeprefix("val_")
        self.curve_metrics = (f"epoch_{trained}", f"epoch_{self.metric}")

    # --- before the first trial ---

    def check_space(self) -> None:
        for name, spec in self.config.tune.space.items():
            key = target_key(name, spec)
            if key is None:
                continue
            if key.split(".")[0] not in self.param_sections or key in FIXED_TRAINING_KEYS:
                raise ConfigError(f"tune.space.{name}: a {self.config.pipeline} search may set model.* and "
                                  f"training.* keys except {', '.join(sorted(FIXED_TRAINING_KEYS))} "
                                  f"(got {key!r}): trials share one prepared data set")

    def data_location(self) -> str:
        """Keyed by everything that shapes the prepared data (not the model, training or search)."""
        shaping = self.config.model_dump(mode="json", exclude={"model", "models", "tune", "training", "spark",
                                                               "store", "compute", "run_date", "registry"})
        shaping["split"] = {k: getattr(self.config.training, k) for k in ("validation_fraction", "seed")}
        return self.config.store.data(self.config.pipeline, "tune", "data", short_digest(shaping))

    def prepare(self) -> dict:
        self.check_space()
        self.tuning.ingest(self.spark, self.config)
        self.prepared = self.tuning.prepare(self.spark, self.config)
        self.data_dir = self.data_location()
        estimator = dl.estimator_for(self.config, self.prepared)
        estimator.set(estimator.dataDir, self.data_dir)
        estimator.set(estimator.numProc, 1)
        data_dir, has_validation = estimator.write_data(self.prepared.train)
        rows = {split: self.spark.read.parquet(join(data_dir, split)).count()
                for split in (("train", "validation") if has_validation else ("train",))}
        if not rows.get("validation"):
            raise PipelineError(f"{self.config.pipeline}: the validation split is empty "
                                f"(training.validation_fraction={self.config.training.validation_fraction}); "
                                f"the search needs it for its objective {self.metric}")
        return {"rows_train": rows["train"], "rows_validation": rows["validation"]}

    # --- one trial ---

    def _estimator(self, trial_config, workers: int, threads: int, work_dir: str):
        estimator = dl.estimator_for(trial_config, self.prepared)
        for param, value in ((estimator.numProc, workers), (estimator.threadsPerRank, threads),
                             (estimator.workDir, work_dir)):
            estimator.set(param, value)
        return estimator

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        estimator = self._estimator(trial_config, context.workers, context.threads_per_worker,
                                    trial_location(self.config, context.remote.study_name, context.work_key))
        estimator.set(estimator.dataDir, self.data_dir)
        estimator.set(estimator.trialReporting, json.dumps(asdict(context.remote)))
        estimator.set(estimator.showProgress, False)  # the search prints one line per trial instead
        summary = estimator.fit(self.prepared.train).summary
        return best_epoch_attrs(summary.history, self.metric, self.direction, summary.pruned_at_epoch,
                                self.config.pipeline)

    # --- the best: refit, test; the search commits and registers it ---

    def refit(self, best_config, best_attrs: dict):
        """The best configuration trained on train + validation for its best number of epochs; returns the
        scoring model (feature stages + Keras model) and its test metrics."""
        epochs = int(best_attrs.get("best_epochs") or best_config.training.epochs)
        config = best_config.model_copy(update={"training": best_config.training.model_copy(
            update={"epochs": epochs, "early_stopping_patience": 0,
                    "warmup_epochs": min(best_config.training.warmup_epochs, epochs - 1)})})
        slots = self.spark.sparkContext.defaultParallelism
        workers = min(config.training.num_proc, slots)
        keyed = {"data": self.data_dir, **config.model_dump(mode="json", include={"model", "training"})}
        work_dir = config.store.data(config.pipeline, "tune", "refits", short_digest(keyed))
        estimator = self._estimator(config, workers, max(1, slots // workers), work_dir)
        model = estimator.fit(self.prepared.train.drop(VALIDATION_INDICATOR))
        metrics = self.tuning.evaluate(model.transform(self.prepared.tests["test"]))
        return (scoring_model(self.prepared, model),
                {f"test_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})

    def evaluate(self, model_uri: str) -> float:
        """The test metric of a committed model (e.g. the current champion) on this search's test split."""
        return judge(model_uri, self.prepared, self.tuning.evaluate, self.tuning.test_metric)
