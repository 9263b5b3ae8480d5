"""The taxi fare's search: the library's XGBoost tuner, plus a second model family, the Keras MLP.

With ``family: keras_mlp`` in the space, a trial of that family fits the MLP of
:mod:`pipelines.taxi_fare.keras_mlp` on the same rows (standardised; written to Parquet once for the ranks)
and reports its validation RMSE after every epoch from rank 0. Pruners compare trials at equal steps, so
epochs (1, 2, ...) and rounds (the rungs) only meet when the rungs are that small.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace

from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from features.arrays import AssembleArray
from features.scaling import StandardizeArray
from features.taxi import LABEL
from pipelines.taxi_fare import keras_mlp
from pipelines.taxi_fare.config import FEATURES_COLUMN
from pipelines.taxi_fare.pipeline import ensure_generated, ingest, taxi_feature_stages
from pipelines.taxi_fare.train import training_data
from spark_ml_pipeline.runs.xgboost_run import XGBoostData
from spark_ml_pipeline.runtime.io import short_digest
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR
from spark_ml_pipeline.tune.keras_tuner import best_epoch_attrs, trial_location
from spark_ml_pipeline.tune.tuner import TrialContext
from spark_ml_pipeline.tune.xgboost_tuner import XGBoostTuner, xgboost_tuner


def prepare_search(spark, config) -> XGBoostData:
    """Generate (if needed) and ingest the trips; the search fits on their split."""
    ensure_generated(spark, config)
    ingest(spark, config)
    return training_data(spark, config)


class TaxiFareTuner(XGBoostTuner):
    """XGBoost trials (the library's), and Keras MLP trials when the space offers ``family: keras_mlp``."""

    param_sections = ("model", "family", "keras")

    def prepare(self) -> dict:
        rows = super().prepare()
        if self.searches_keras():
            self._prepare_keras()
        return rows

    def searches_keras(self) -> bool:
        family = self.config.tune.space.get("family")
        return self.config.family == "keras_mlp" or (family is not None and "keras_mlp" in (family.choices or []))

    def _prepare_keras(self) -> None:
        """Standardise with statistics of the training rows and write what the ranks read, once."""
        # XGBoost reads the feature columns; the MLP one array of them, standardised.
        assembled = AssembleArray(inputCols=self.data.features, outputCol=FEATURES_COLUMN).transform(self.train_frame)
        scaler = StandardizeArray(inputCol=FEATURES_COLUMN, outputCol=keras_mlp.SCALED_FEATURES)
        self.scaler = scaler.fit(assembled.where(~F.col(VALIDATION_INDICATOR)))
        self.keras_frame = self.scaler.transform(assembled).select(keras_mlp.SCALED_FEATURES, LABEL,
                                                                   VALIDATION_INDICATOR)
        self.features_size = len(self.scaler.getOrDefault(self.scaler.means))
        shaping = self.config.model_dump(mode="json", include={"generate", "ingest", "features", "split",
                                                               "run_date"})
        self.keras_data_dir = self.config.store.data(self.config.pipeline, "tune", "keras-data",
                                                     short_digest(shaping))
        writer = keras_mlp.estimator(self.config.keras, features_size=self.features_size, label=LABEL, workers=1,
                                     threads=1, work_dir=self.keras_data_dir, data_dir=self.keras_data_dir)
        writer.write_data(self.keras_frame)

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        if trial_config.family != "keras_mlp":
            return super().fit_trial(trial_config, context)
        remote = replace(context.remote, metric=f"val_{keras_mlp.RMSE_LOG}")
        estimator = keras_mlp.estimator(
            trial_config.keras, features_size=self.features_size, label=LABEL, workers=context.workers,
            threads=context.threads_per_worker, seed=trial_config.model.seed, data_dir=self.keras_data_dir,
            work_dir=trial_location(trial_config, context.remote.study_name, context.work_key),
            trial_reporting=json.dumps(asdict(remote)))
        estimator.set(estimator.showProgress, False)  # the search prints one line per trial instead
        fitted = estimator.fit(self.keras_frame)
        return best_epoch_attrs(fitted.summary.history, f"val_{keras_mlp.RMSE_LOG}", "minimize",
                                fitted.summary.pruned_at_epoch, f"{trial_config.pipeline} keras_mlp",
                                family="keras_mlp")

    def refit(self, best_config, best_attrs: dict):
        if best_config.family != "keras_mlp":
            return super().refit(best_config, best_attrs)
        # The MLP on train + validation for its best number of epochs (standardised on those rows).
        section = best_config.keras.model_copy(update={"epochs": int(best_attrs.get("best_epochs") or
                                                                     best_config.keras.epochs),
                                                       "early_stopping_patience": 0})
        stages = taxi_feature_stages(best_config)  # ending in the array column the MLP reads
        rows = PipelineModel(stages).transform(self.data.splits.train_and_validation())
        scaler = StandardizeArray(inputCol=FEATURES_COLUMN, outputCol=keras_mlp.SCALED_FEATURES).fit(rows)
        keyed = {"data": self.keras_data_dir, "keras": section.model_dump(mode="json")}
        work_dir = best_config.store.data(best_config.pipeline, "tune", "refits", short_digest(keyed))
        slots = self.spark.sparkContext.defaultParallelism
        keras_model = keras_mlp.estimator(section, features_size=self.features_size, label=LABEL, workers=slots,
                                          threads=1, work_dir=work_dir, seed=best_config.model.seed).fit(
            scaler.transform(rows).select(keras_mlp.SCALED_FEATURES, LABEL))
        fitted = keras_mlp.scoring_pipeline(stages, scaler, keras_model)
        return fitted, {f"test_{k}": v for k, v in self.data.evaluate(fitted.transform(self.data.splits.test)).items()}


# The search's tuner factory (pipelines/taxi_fare/__init__.py names it).
tuner = xgboost_tuner(prepare_search, TaxiFareTuner)
