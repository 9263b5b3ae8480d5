"""The search tuner of a GAN pipeline: every trial is a Horovod GAN fit, scored by a judge of its samples.

A GAN has no validation loss worth choosing by (its two losses play against each other), so a trial's value is
the judge's verdict on its generator's samples (e.g. the share a trained classifier assigns to the class asked
for), computed through Spark after the fit. Trials share the training images, written to Parquet once.

The whole data set trains every trial (there is no split to add back), so the best trial's generator *is* the
refit: it is read from the trial's working directory, not trained again, and judged on noise the trials never
saw (``held_out_seed``) for the test figure the champion is compared by.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.ml import PipelineModel

from spark_ml_pipeline.runtime.io import short_digest
from spark_ml_pipeline.tune.keras_tuner import KerasTuner, trial_location
from spark_ml_pipeline.tune.tuner import TrialContext


@dataclass(frozen=True)
class GanTuning:
    """How a GAN pipeline is searched.

    ``check(config)`` raises a ConfigError when the search cannot judge (e.g. no judge configured);
    ``images(spark, config)`` the training rows; ``estimator(config)`` a configured GAN estimator;
    ``scoring(config, generator)`` the committed scoring pipeline around a fitted generator;
    ``judge(spark, config, scoring, seed)`` the judge's metrics (``seed`` None: the configured noise)."""

    check: Callable
    ingest: Callable
    images: Callable
    estimator: Callable
    scoring: Callable
    judge: Callable
    objective: str
    direction: str = "maximize"
    held_out_seed: int = 99_991


def gan_tuner(tuning: GanTuning):
    """The tuner factory a GAN pipeline declares: ``tuner=gan_tuner(TUNING)``."""
    return lambda spark, config: GanTuner(spark, config, tuning)


class GanTuner(KerasTuner):
    """Search a GAN pipeline: Horovod fits judged after training; no pruning (no per-epoch objective)."""

    budget_attr, budget_name = "epochs", "epochs"

    def __init__(self, spark, config, tuning: GanTuning) -> None:
        self.spark, self.config, self.tuning = spark, config, tuning
        self.metric, self.direction = tuning.objective, tuning.direction
        self.test_metric, self.test_direction = f"test_{tuning.objective}", tuning.direction
        self.curve_metrics = ("epoch_g_loss", "epoch_d_loss")

    def prepare(self) -> dict:
        self.check_space()
        self.tuning.check(self.config)
        self.tuning.ingest(self.spark, self.config)
        self.images = self.tuning.images(self.spark, self.config)
        self.data_dir = self.data_location()
        estimator = self.tuning.estimator(self.config)
        estimator.set(estimator.dataDir, self.data_dir)
        estimator.set(estimator.numProc, 1)
        estimator.write_data(self.images)
        return {"rows_train": self.spark.read.parquet(f"{self.data_dir}/train").count()}

    def _estimator(self, trial_config, workers: int, threads: int, work_dir: str):
        estimator = self.tuning.estimator(trial_config)
        for param, value in ((estimator.numProc, workers), (estimator.threadsPerRank, threads),
                             (estimator.workDir, work_dir), (estimator.dataDir, self.data_dir),
                             (estimator.showProgress, False)):  # the search prints one line per trial instead
            estimator.set(param, value)
        return estimator

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        work_dir = trial_location(self.config, context.remote.study_name, context.work_key)
        estimator = self._estimator(trial_config, context.workers, context.threads_per_worker, work_dir)
        generator = estimator.fit(self.images)
        judged = self.tuning.judge(self.spark, trial_config, self.tuning.scoring(trial_config, generator), None)
        history = generator.summary.history
        return {"value": judged[self.metric], "epochs": generator.summary.epochs_trained, "work_dir": work_dir,
                **{k: v for k, v in judged.items() if k != self.metric},
                "curves": {f"epoch_{k}": v for k, v in history.items()}}

    def refit(self, best_config, best_attrs: dict):
        """The best trial's generator, read from its working directory (trained again only if it is gone), and
        its judge's figures on held-out noise."""
        slots = self.spark.sparkContext.defaultParallelism
        workers = min(best_config.training.num_proc, slots)
        keyed = {"data": self.data_dir, **best_config.model_dump(mode="json", include={"model", "training"})}
        work_dir = best_attrs.get("work_dir") or best_config.store.data(
            best_config.pipeline, "tune", "refits", short_digest(keyed))
        estimator = self._estimator(best_config, workers, max(1, slots // workers), work_dir)
        generator = estimator.finished_model() or estimator.fit(self.images)
        scoring = self.tuning.scoring(best_config, generator)
        judged = self.tuning.judge(self.spark, best_config, scoring, self.tuning.held_out_seed)
        return scoring, {f"test_{k}": v for k, v in judged.items() if isinstance(v, (int, float))}

    def evaluate(self, model_uri: str) -> float:
        """The held-out judge figure of a committed generator (e.g. the current champion)."""
        scoring = PipelineModel.load(model_uri)
        return float(self.tuning.judge(self.spark, self.config, scoring, self.tuning.held_out_seed)[self.metric])

