"""The search tuner of every XGBoost pipeline: trials pruned on rungs of boosting rounds.

A pipeline hands over the same :class:`XGBoostData` it trains on (the split rows before features, the feature
stages, the label and task) and declares ``tuner=xgboost_tuner(prepare_search)``.

Features are computed once (they are deterministic) and cached; every trial fits on the cached
train+validation frame. Rounds grow rung by rung (``tune.budgets``), each rung continuing the previous booster
(``xgb_model``), so a trial that reaches the last rung costs the same rounds as one fit. Early stopping is
applied at rung granularity on the per-round validation curve (xgboost's own early stopping would count rounds
per rung); the trial's value is the best validation value over the rounds trained, i.e. the model cut at its
best round, and the refit uses that many rounds.
"""
from __future__ import annotations

from typing import Callable

from pyspark.ml import PipelineModel

from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.runs.xgboost_run import XGBoostData, fit_model
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR
from spark_ml_pipeline.train.xgboost import EVAL_METRIC, WorkerLayout, is_local, xgb_estimator
from spark_ml_pipeline.tune.tuner import TrialContext


def feature_list(features: str | list[str]) -> list[str]:
    return [features] if isinstance(features, str) else list(features)


def xgboost_tuner(prepare_search: Callable[..., XGBoostData], tuner_class=None):
    """The tuner factory an XGBoost pipeline declares: ``tuner=xgboost_tuner(prepare_search)``."""
    return lambda spark, config: (tuner_class or XGBoostTuner)(spark, config, prepare_search)


class XGBoostTuner:
    direction = "minimize"
    worker_noun = "XGBoost worker"
    budget_attr, budget_name = "best_rounds", "rounds"
    param_sections = ("model",)

    def __init__(self, spark, config, prepare_search: Callable[..., XGBoostData]) -> None:
        self.spark, self.config, self.prepare_search = spark, config, prepare_search
        self.eval_metric = EVAL_METRIC[getattr(config, "task", "regression")]
        # a regression's until prepare() reads what the pipeline's data says
        self.test_metric, self.test_direction = "test_rmse", "minimize"

    @property
    def metric(self) -> str:
        return f"validation_{self.eval_metric}"

    @property
    def curve_metrics(self) -> tuple[str, str]:
        return f"train_{self.eval_metric}_by_round", f"validation_{self.eval_metric}_by_round"

    def prepare(self) -> dict:
        self.data = self.prepare_search(self.spark, self.config)
        self.eval_metric = EVAL_METRIC[self.data.task]  # the data's task is the authority once prepared
        self.test_metric, self.test_direction = f"test_{self.data.test_metric}", "minimize"
        features = PipelineModel(self.data.feature_stages)
        partitions = max(2, self.spark.sparkContext.defaultParallelism)
        self.train_frame = (features.transform(self.data.splits.train_with_indicator())
                            .select(*feature_list(self.data.features), self.data.label, VALIDATION_INDICATOR)
                            # a shuffle boundary: XGBoost's barrier stage must not see the union's partitions
                            .repartition(partitions).cache())
        rows = {r[VALIDATION_INDICATOR]: r["count"]
                for r in self.train_frame.groupBy(VALIDATION_INDICATOR).count().collect()}
        if not rows.get(True) or not rows.get(False):
            raise PipelineError(f"{self.config.pipeline}: the split leaves {rows.get(False, 0)} training and "
                                f"{rows.get(True, 0)} validation rows; tuning needs both")
        return {"rows_train": rows[False], "rows_validation": rows[True]}

    def budgets(self, trial_config) -> list[int]:
        total = trial_config.model.n_estimators
        if trial_config.tune.pruner == "none" and not trial_config.tune.budgets:
            return [total]  # rungs only serve the pruner; each costs a fit's start-up and barrier syncs
        rungs = trial_config.tune.budgets or [total // 8, total // 4, total // 2]
        return sorted({b for b in rungs if 0 < b < total} | {total})

    def _estimator(self, model_config, device: str, layout: WorkerLayout, **overrides):
        return xgb_estimator(model_config.model_copy(update=overrides), self.data.features,
                             self.data.label, self.data.task, device=device, with_validation=False, layout=layout)

    def fit_trial(self, trial_config, context: TrialContext) -> dict:
        model = trial_config.model
        patience = model.early_stopping_rounds
        booster, trained = None, 0
        train_curve: list[float] = []
        validation_curve: list[float] = []
        for budget in self.budgets(trial_config):
            layout = WorkerLayout(context.workers, context.threads_per_worker,
                                  in_driver=context.workers == 1 and is_local(self.spark.sparkContext))
            estimator = self._estimator(model, trial_config.compute.device, layout,
                                        n_estimators=budget - trained, early_stopping_rounds=None)
            estimator.setParams(validation_indicator_col=VALIDATION_INDICATOR)
            if booster is not None:
                estimator.setParams(xgb_model=booster)
            fitted = estimator.fit(self.train_frame)
            summary = fitted.training_summary
            train_curve += list(summary.train_objective_history.get(self.eval_metric, []))
            validation_curve += list(summary.validation_objective_history.get(self.eval_metric, []))
            booster = fitted.get_booster()
            trained = booster.num_boosted_rounds()
            best = min(range(len(validation_curve)), key=validation_curve.__getitem__)
            context.report(trained, validation_curve[best])
            if patience and trained - (best + 1) >= patience:
                break
        best = min(range(len(validation_curve)), key=validation_curve.__getitem__)
        return {"value": validation_curve[best], "best_rounds": best + 1, "rounds": trained,
                "curves": {self.curve_metrics[0]: train_curve, self.curve_metrics[1]: validation_curve}}

    def refit(self, best_config, best_attrs: dict):
        """The best configuration, fitted with its best number of rounds on train + validation."""
        estimator = self._estimator(best_config.model, best_config.compute.device,
                                    WorkerLayout.of(best_config.model, self.spark.sparkContext),
                                    n_estimators=int(best_attrs["best_rounds"]), early_stopping_rounds=None)
        partitions = max(2, self.spark.sparkContext.defaultParallelism)
        fitted = fit_model(self.data, estimator,  # a classifier's ends with its label mapping, as a trained one
                           training=self.data.splits.train_and_validation().repartition(partitions))  # see prepare()
        return fitted, {f"test_{k}": v for k, v in self.data.evaluate(fitted.transform(self.data.splits.test)).items()
                        if isinstance(v, (int, float))}

    def evaluate(self, model_uri: str) -> float:
        """The test metric of a committed model (e.g. the current champion) on this search's test split."""
        return self.data.judge(model_uri)
