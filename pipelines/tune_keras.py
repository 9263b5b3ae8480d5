"""The search tuner of the Keras pipelines: every trial is a Horovod fit whose rank 0 reports each epoch.

A pipeline declares how it is searched in ``TUNING`` (:class:`pipelines.deep_learning.Tuning`): its ingest and
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
import os
from dataclasses import asdict

from pipelines import deep_learning as dl
from pipelines.errors import ConfigError, PipelineError
from pipelines.io import join, local_path
from pipelines.keras_estimator import VALIDATION, KerasModel
from pipelines.lineage import short_digest
from pipelines.registry import pipeline_module
from pipelines.search_space import target_key
from pipelines.store import MODEL_ARTIFACT, MODEL_COMMITTED_TAG, Store
from pipelines.trial_reporting import Pruned, TrialContext

# Keys a trial may not change: they define the data every trial shares.
FIXED_TRAINING_KEYS = {"training.validation_fraction", "training.seed", "training.num_proc",
                       "training.threads_per_rank"}


class KerasTuner:
    """Search a Keras pipeline: Horovod fits, per-epoch pruning from rank 0, refit of the best."""

    worker_noun = "Horovod rank"
    budget_attr, budget_name = "best_epochs", "epochs"
    param_sections = ("model", "training")

    def __init__(self, spark, config) -> None:
        self.spark, self.config = spark, config
        self.tuning: dl.Tuning = pipeline_module(config.pipeline).TUNING
        self.metric, self.direction = self.tuning.objective, self.tuning.direction
        self.test_metric, self.test_direction = f"test_{self.tuning.test_metric}", self.tuning.test_direction
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
                                                               "store", "compute", "run_date"})
        shaping["split"] = {k: getattr(self.config.training, k) for k in ("validation_fraction", "seed")}
        return Store(self.config.store).data(self.config.pipeline, "tune", "data", short_digest(shaping))

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

    def trial_location(self, study_name: str, work_key: int) -> str:
        return Store(self.config.store).data(self.config.pipeline, "tune", "trials", study_name, f"trial-{work_key}")

    def _estimator(self, trial_config, workers: int, threads: int, work_dir: str):
        estimator = dl.estimator_for(trial_config, self.prepared)
        for param, value in ((estimator.numProc, workers), (estimator.threadsPerRank, threads),
                             (estimator.workDir, work_dir)):
            estimator.set(param, value)
        return estimator

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        estimator = self._estimator(trial_config, context.workers, context.threads_per_worker,
                                    self.trial_location(context.remote.study_name, context.work_key))
        estimator.set(estimator.dataDir, self.data_dir)
        estimator.set(estimator.trialReporting, json.dumps(asdict(context.remote)))
        fitted = estimator.fit(self.prepared.train)
        history = fitted.history
        values = history.get(self.metric)
        if not values:
            raise PipelineError(f"{self.config.pipeline}: the fit logged no {self.metric!r} "
                                f"(logged: {', '.join(history) or 'nothing'})")
        pick = min if self.direction == "minimize" else max
        best = pick(range(len(values)), key=values.__getitem__)
        attrs = {"value": values[best], "best_epochs": best + 1, "epochs": len(values),
                 "curves": {f"epoch_{k}": v for k, v in history.items()}}
        pruned_at = estimator.rank_results[0].get("pruned_at_epoch")
        if pruned_at:
            raise Pruned(f"pruned at epoch {pruned_at} ({values[-1]:.4f})", attrs)
        return attrs

    # --- the best: refit, test, commit ---

    def refit(self, best_config, best_attrs: dict):
        """The best configuration trained on train + validation for its best number of epochs."""
        epochs = int(best_attrs.get("best_epochs") or best_config.training.epochs)
        config = best_config.model_copy(update={"training": best_config.training.model_copy(
            update={"epochs": epochs, "early_stopping_patience": 0,
                    "warmup_epochs": min(best_config.training.warmup_epochs, epochs - 1)})})
        slots = self.spark.sparkContext.defaultParallelism
        workers = min(config.training.num_proc, slots)
        keyed = {"data": self.data_dir, **config.model_dump(mode="json", include={"model", "training"})}
        work_dir = Store(config.store).data(config.pipeline, "tune", "refits", short_digest(keyed))
        estimator = self._estimator(config, workers, max(1, slots // workers), work_dir)
        model = estimator.fit(self.prepared.train.drop(VALIDATION))
        metrics = self.tuning.evaluate(model.transform(self.prepared.tests["test"]))
        return model, {f"test_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}

    def commit_model(self, model: KerasModel, run) -> str:
        """The Keras file logged as the run's model artifact (its save was atomic; logging copies it)."""
        import mlflow

        model_file = model.getOrDefault(model.modelPath)
        mlflow.log_artifact(model_file, MODEL_ARTIFACT)
        model_uri = f"{run.info.artifact_uri}/{MODEL_ARTIFACT}/{os.path.basename(model_file)}"
        mlflow.set_tags({MODEL_COMMITTED_TAG: "true", "model_uri": model_uri})
        return model_uri

    def evaluate(self, model_uri: str) -> float:
        """The test metric of a saved Keras model (e.g. the current champion) on this search's test split."""
        prepared = self.prepared
        model = KerasModel(modelPath=str(local_path(model_uri)), featuresCol=prepared.features_column,
                           inputShape=list(prepared.input_shape))
        return float(self.tuning.evaluate(model.transform(prepared.tests["test"]))[self.tuning.test_metric])
