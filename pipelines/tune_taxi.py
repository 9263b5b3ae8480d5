"""The search tuner of the taxi_fare pipeline: SparkXGBRegressor trials pruned on rungs of boosting rounds,
and, when the space offers ``family: keras_mlp``, Keras MLP trials (Horovod) pruned per epoch."""
from __future__ import annotations

import json
from dataclasses import asdict, replace

from pipelines.errors import PipelineError
from pipelines.lineage import short_digest
from pipelines.trial_reporting import Pruned, TrialContext


class TaxiFareTuner:
    """XGBoost on the taxi features: successive budgets of boosting rounds, validation RMSE at each.

    Features are computed once (they are deterministic) and cached; every trial fits
    ``SparkXGBRegressor`` on the cached train+validation frame. Rounds grow rung by rung (``tune.budgets``),
    each rung continuing the previous booster (``xgb_model``), so a trial that reaches the last rung costs
    the same rounds as one fit. Early stopping is applied at rung granularity on the per-round validation
    curve (xgboost's own early stopping would count rounds per rung); the trial's value is the minimum
    validation RMSE over the rounds trained, i.e. the model cut at its best round, and the refit uses that
    many rounds.

    With ``family: keras_mlp`` in the space, a trial of that family fits the MLP of :mod:`pipelines.taxi_keras`
    on the same rows (standardised; written to Parquet once for the ranks) and reports its validation RMSE
    after every epoch from rank 0. Pruners compare trials at equal steps, so epochs (1, 2, ...) and rounds
    (the rungs) only meet when the rungs are that small.
    """

    metric = "validation_rmse"
    direction = "minimize"
    test_metric = "test_rmse"
    test_direction = "minimize"
    curve_metrics = ("train_rmse_by_round", "validation_rmse_by_round")
    worker_noun = "XGBoost worker"
    budget_attr, budget_name = "best_rounds", "rounds"
    param_sections = ("model", "family", "keras")

    def __init__(self, spark, config) -> None:
        self.spark, self.config = spark, config

    def prepare(self) -> dict:
        from pyspark.ml import PipelineModel

        from features.taxi import LABEL, feature_stages
        from pipelines import taxi_fare
        from pipelines.train import VALIDATION_INDICATOR, split_by_hash

        spark, config = self.spark, self.config
        taxi_fare.ensure_generated(spark, config)
        taxi_fare.ingest(spark, config)
        trips, _ = taxi_fare._valid_trips(spark, config)
        self.splits = split_by_hash(trips, config.split)
        self.feature_kwargs = taxi_fare._feature_kwargs(config)
        features = PipelineModel(feature_stages(**self.feature_kwargs))
        self.train_frame = (features.transform(self.splits.train_with_indicator())
                            .select(taxi_fare.FEATURES_COLUMN, LABEL, VALIDATION_INDICATOR)
                            # a shuffle boundary: XGBoost's barrier stage must not see the union's partitions
                            .repartition(max(2, spark.sparkContext.defaultParallelism)).cache())
        rows = {r[VALIDATION_INDICATOR]: r["count"]
                for r in self.train_frame.groupBy(VALIDATION_INDICATOR).count().collect()}
        if not rows.get(True) or not rows.get(False):
            raise PipelineError(f"taxi_fare: the split leaves {rows.get(False, 0)} training and "
                                f"{rows.get(True, 0)} validation rows; tuning needs both")
        if self.searches_keras():
            self._prepare_keras()
        return {"rows_train": rows[False], "rows_validation": rows[True]}

    def searches_keras(self) -> bool:
        family = self.config.tune.space.get("family")
        return self.config.family == "keras_mlp" or (family is not None and "keras_mlp" in (family.choices or []))

    def _prepare_keras(self) -> None:
        """Standardise with statistics of the training rows and write what the ranks read, once."""
        from features.scaling import StandardizeArray
        from features.taxi import LABEL
        from pipelines.store import Store
        from pipelines.taxi_fare import FEATURES_COLUMN
        from pipelines.taxi_keras import SCALED_FEATURES, estimator
        from pipelines.train import VALIDATION_INDICATOR

        from pyspark.sql import functions as F

        scaler = StandardizeArray(inputCol=FEATURES_COLUMN, outputCol=SCALED_FEATURES)
        self.scaler = scaler.fit(self.train_frame.where(~F.col(VALIDATION_INDICATOR)))
        self.keras_frame = self.scaler.transform(self.train_frame).select(SCALED_FEATURES, LABEL, VALIDATION_INDICATOR)
        self.features_size = len(self.scaler.getOrDefault(self.scaler.means))
        shaping = self.config.model_dump(mode="json", include={"generate", "ingest", "features", "split",
                                                               "run_date"})
        self.keras_data_dir = Store(self.config.store).data("taxi_fare", "tune", "keras-data", short_digest(shaping))
        writer = estimator(self.config.keras, features_size=self.features_size, label=LABEL, workers=1, threads=1,
                           work_dir=self.keras_data_dir, data_dir=self.keras_data_dir)
        writer.write_data(self.keras_frame)

    def budgets(self, trial_config) -> list[int]:
        total = trial_config.model.n_estimators
        if trial_config.tune.pruner == "none" and not trial_config.tune.budgets:
            return [total]  # rungs only serve the pruner; each costs a fit's start-up and barrier syncs
        rungs = trial_config.tune.budgets or [total // 8, total // 4, total // 2]
        return sorted({b for b in rungs if 0 < b < total} | {total})

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        if trial_config.family == "keras_mlp":
            return self._fit_keras_trial(trial_config, context)
        from features.taxi import LABEL
        from pipelines.taxi_fare import FEATURES_COLUMN
        from pipelines.train import VALIDATION_INDICATOR, xgb_regressor

        model = trial_config.model
        patience = model.early_stopping_rounds
        booster, trained = None, 0
        train_curve: list[float] = []
        validation_curve: list[float] = []
        for budget in self.budgets(trial_config):
            segment = model.model_copy(update={"n_estimators": budget - trained, "num_workers": context.workers,
                                               "early_stopping_rounds": None})
            estimator = xgb_regressor(segment, FEATURES_COLUMN, LABEL, device=trial_config.compute.device,
                                      with_validation=False)
            estimator.setParams(validation_indicator_col=VALIDATION_INDICATOR)
            if booster is not None:
                estimator.setParams(xgb_model=booster)
            fitted = estimator.fit(self.train_frame)
            summary = fitted.training_summary
            train_curve += list(summary.train_objective_history.get("rmse", []))
            validation_curve += list(summary.validation_objective_history.get("rmse", []))
            booster = fitted.get_booster()
            trained = booster.num_boosted_rounds()
            best = min(range(len(validation_curve)), key=validation_curve.__getitem__)
            context.report(trained, validation_curve[best])
            if patience and trained - (best + 1) >= patience:
                break
        best = min(range(len(validation_curve)), key=validation_curve.__getitem__)
        return {"value": validation_curve[best], "best_rounds": best + 1, "rounds": trained,
                "curves": {"train_rmse_by_round": train_curve, "validation_rmse_by_round": validation_curve}}

    def _fit_keras_trial(self, trial_config, context: TrialContext) -> dict:
        from features.taxi import LABEL
        from pipelines.store import Store
        from pipelines.taxi_keras import RMSE_LOG, estimator

        work_dir = Store(trial_config.store).data("taxi_fare", "tune", "trials", context.remote.study_name,
                                                  f"trial-{context.work_key}")
        remote = replace(context.remote, metric=f"val_{RMSE_LOG}")
        fitted = estimator(trial_config.keras, features_size=self.features_size, label=LABEL,
                           workers=context.workers, threads=context.threads_per_worker, work_dir=work_dir,
                           seed=trial_config.model.seed, data_dir=self.keras_data_dir,
                           trial_reporting=json.dumps(asdict(remote)))
        model = fitted.fit(self.keras_frame)
        train_curve, validation_curve = model.history.get(RMSE_LOG, []), model.history.get(f"val_{RMSE_LOG}", [])
        if not validation_curve:
            raise PipelineError(f"taxi_fare keras_mlp: the fit logged no val_{RMSE_LOG}")
        best = min(range(len(validation_curve)), key=validation_curve.__getitem__)
        attrs = {"value": validation_curve[best], "best_epochs": best + 1, "epochs": len(validation_curve),
                 "family": "keras_mlp",
                 "curves": {"train_rmse_by_epoch": train_curve, "validation_rmse_by_epoch": validation_curve}}
        pruned_at = fitted.rank_results[0].get("pruned_at_epoch")
        if pruned_at:
            raise Pruned(f"pruned at epoch {pruned_at}", attrs)
        return attrs

    def _refit_keras(self, best_config, best_attrs: dict):
        """The MLP on train + validation for its best number of epochs (standardised on those rows)."""
        from features.scaling import StandardizeArray
        from features.taxi import LABEL, feature_stages
        from pipelines.store import Store
        from pipelines.taxi_fare import FEATURES_COLUMN
        from pipelines.taxi_keras import SCALED_FEATURES, estimator, scoring_pipeline
        from pipelines.train import regression_metrics

        from pyspark.ml import PipelineModel

        section = best_config.keras.model_copy(update={"epochs": int(best_attrs.get("best_epochs") or
                                                                     best_config.keras.epochs),
                                                       "early_stopping_patience": 0})
        stages = feature_stages(**self.feature_kwargs)
        rows = PipelineModel(stages).transform(self.splits.train.unionByName(self.splits.validation))
        scaler = StandardizeArray(inputCol=FEATURES_COLUMN, outputCol=SCALED_FEATURES).fit(rows)
        keyed = {"data": self.keras_data_dir, "keras": section.model_dump(mode="json")}
        work_dir = Store(best_config.store).data("taxi_fare", "tune", "refits", short_digest(keyed))
        slots = self.spark.sparkContext.defaultParallelism
        keras_model = estimator(section, features_size=self.features_size, label=LABEL, workers=slots, threads=1,
                                work_dir=work_dir, seed=best_config.model.seed).fit(
            scaler.transform(rows).select(SCALED_FEATURES, LABEL))
        fitted = scoring_pipeline(stages, scaler, keras_model)
        metrics = regression_metrics(fitted.transform(self.splits.test), LABEL)
        return fitted, {f"test_{k}": v for k, v in metrics.items()}

    def refit(self, best_config, best_attrs: dict):
        """The best configuration, fitted with its best number of rounds on train + validation."""
        if best_config.family == "keras_mlp":
            return self._refit_keras(best_config, best_attrs)
        from features.taxi import LABEL, feature_stages
        from pipelines.taxi_fare import FEATURES_COLUMN
        from pipelines.train import fit_pipeline, regression_metrics, xgb_regressor

        model = best_config.model.model_copy(update={"n_estimators": int(best_attrs["best_rounds"]),
                                                     "early_stopping_rounds": None})
        estimator = xgb_regressor(model, FEATURES_COLUMN, LABEL, device=best_config.compute.device,
                                  with_validation=False)
        fitted = fit_pipeline(feature_stages(**self.feature_kwargs), estimator,
                              self.splits.train.unionByName(self.splits.validation)  # see prepare()
                              .repartition(max(2, self.spark.sparkContext.defaultParallelism)))
        metrics = regression_metrics(fitted.transform(self.splits.test), LABEL)
        return fitted, {f"test_{k}": v for k, v in metrics.items()}

    def commit_model(self, model, run) -> str:
        from pipelines.store import commit_spark_model

        return commit_spark_model(self.spark, model, run)

    def evaluate(self, model_uri: str) -> float:
        """The test metric of a saved model (e.g. the current champion) on this search's test split."""
        from pyspark.ml import PipelineModel

        from features.taxi import LABEL
        from pipelines.train import regression_metrics

        return regression_metrics(PipelineModel.load(model_uri).transform(self.splits.test), LABEL)["rmse"]
