"""One recorded XGBoost fit: features + XGBoost on the training rows (validation rows held out), the held-out
metrics against a trivial baseline, and the run in the store with its report.

Every XGBoost pipeline (taxi_fare and every tabular data set) describes what it trains on once, as
:class:`XGBoostData` (its split rows, feature stages, label and task), and hands it to :func:`train_and_record`
to train, or to the search's tuner (``tune/xgboost_tuner.py``) to search; the run is recorded by the one
:class:`RunRecorder`, as :func:`spark_ml_pipeline.runs.keras_run.train_and_record` records a Keras fit.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.quarantine import IngestStats
from spark_ml_pipeline.report.samples import vector_slot_names
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase, run_date
from spark_ml_pipeline.runs.xgboost_report import record_xgboost_report
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.store.registry import Promotion
from spark_ml_pipeline.train.metrics import (baseline_metrics, classification_metrics_from_counts, confusion_counts,
                                             probabilistic_metrics, regression_metrics, regression_metrics_by)
from spark_ml_pipeline.train.splits import HELD_OUT_PART, Splits
from spark_ml_pipeline.train.xgboost import Task, WorkerLayout, fit_pipeline, xgb_estimator

PREDICTION, PROBABILITY = "prediction", "probability"
# The wall time of a run's stages, in the order they run (a pipeline's own stages, e.g. ingest, come first).
STAGES = ("train (features + XGBoost)", "evaluate", "store", "report")


@dataclass
class XGBoostData:
    """What an XGBoost pipeline trains and searches on: its split rows (before features), the feature stages
    (fitted or not: they are fitted with the estimator on the training rows), the column XGBoost learns and the
    task. A classifier learns a label index; ``classes`` names the indices and ``tail`` (an ``IndexToString``)
    turns predictions back into them."""

    splits: Splits
    feature_stages: list
    label: str
    task: Task = "regression"
    features: str | list[str] = "features"  # a vector column, or a list of numeric columns (xgboost.spark's)
    label_name: str | None = None  # the label as the data names it, when ``label`` is its index
    classes: list[str] | None = None
    tail: list = field(default_factory=list)
    ingest_stats: IngestStats | None = None
    test_ingest_stats: IngestStats | None = None  # of a fixed holdout file, when the test rows are one
    noise_floor_rmse: float | None = None  # the label's irreducible error, when known (generated data)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @property
    def test_metric(self) -> str:
        """What judges a model on the test rows (lower is better)."""
        return "log_loss" if self.is_classification else "rmse"

    def judge(self, model_uri: str) -> float:
        """The ``test_metric`` of a committed model (e.g. the current champion) on these test rows."""
        scored = PipelineModel.load(model_uri).transform(self.splits.test)
        return float(self.evaluate(scored)[self.test_metric])

    def evaluate(self, scored: DataFrame) -> dict:
        """A scored frame -> RMSE/MAE/R² (regression), or log loss, AUC (binary), accuracy and macro-F1."""
        if not self.is_classification:
            metrics = regression_metrics(scored, self.label)
            metrics.pop("n")
            return metrics
        metrics = probabilistic_metrics(scored, self.label, vector_to_array(F.col(PROBABILITY)), len(self.classes))
        quality = classification_metrics_from_counts(confusion_counts(scored, self.label, F.col(PREDICTION)),
                                                     len(self.classes))
        metrics.update(accuracy=quality["accuracy"], macro_f1=quality["macro_f1"])
        return metrics


@dataclass
class XGBoostResult:
    run_id: str
    model_uri: str
    task: str
    label: str
    metrics: dict
    rows: dict
    tracking_uri: str
    seconds: float
    stage_seconds: dict = field(default_factory=dict)  # wall time per stage, in the order they ran
    quarantined_by_reason: dict = field(default_factory=dict)
    classes: list[str] | None = None
    noise_floor_rmse: float | None = None
    report: str | None = None  # where the run's report.html is
    promotion: Promotion | None = None  # the registered version; None with registry.promote_runs=false


def estimator_for(config: PipelineConfigBase, data: XGBoostData, spark):
    """The configured XGBoost estimator of ``config.model``; validation rows held out when the split has any."""
    return xgb_estimator(config.model, data.features, data.label, data.task, device=config.compute.device,
                         with_validation=config.split.validation_fraction > 0,
                         layout=WorkerLayout.of(config.model, spark.sparkContext))


def fit_model(data: XGBoostData, estimator, training: DataFrame | None = None, on_retry=None) -> PipelineModel:
    """Feature stages + estimator fitted on ``training`` (default: train rows, validation rows flagged), then
    the label mapping: the model that is committed and scored."""
    model = fit_pipeline(data.feature_stages, estimator,
                         data.splits.train_with_indicator() if training is None else training, on_retry=on_retry)
    return PipelineModel([*model.stages, *data.tail]) if data.tail else model


def xgboost_stage(model: PipelineModel, data: XGBoostData):
    return model.stages[len(data.feature_stages)]


def confusion_matrix(scored: DataFrame, label: str, classes: list[str]) -> dict:
    """Rows are true classes, columns predicted classes, in the order of ``classes``."""
    counts = confusion_counts(scored, label, F.col(PREDICTION))
    k = len(classes)
    return {"labels": classes, "rows": "true class", "columns": "predicted class",
            "matrix": [[counts.get((y, p), 0) for p in range(k)] for y in range(k)]}


@dataclass
class HeldOut:
    metrics: dict  # test_* and validation_*
    rows_test: int
    rows_validation: int
    confusion: dict | None = None  # of the test rows (classification)


def evaluate_held_out(model: PipelineModel, data: XGBoostData, with_validation: bool) -> HeldOut:
    """The test (and validation) rows scored and measured: regression in one pass over both, classification
    once per part (each scored frame cached while its metrics are computed)."""
    splits = data.splits
    if not data.is_classification:
        parts = ["test", "validation"] if with_validation else ["test"]
        by_part = regression_metrics_by(model.transform(splits.test_and_validation()), data.label, HELD_OUT_PART,
                                        parts)
        validation = by_part.get("validation", {"n": 0})
        metrics = {f"{part}_{k}": v for part, values in by_part.items() for k, v in values.items() if k != "n"}
        return HeldOut(metrics, by_part["test"]["n"], validation["n"])
    columns = [data.label, PREDICTION, PROBABILITY]
    scored_test = model.transform(splits.test).select(*columns).cache()
    scored_validation = model.transform(splits.validation).select(*columns).cache()
    try:
        metrics = {f"test_{k}": v for k, v in data.evaluate(scored_test).items()}
        if with_validation:
            metrics.update({f"validation_{k}": v for k, v in data.evaluate(scored_validation).items()})
        return HeldOut(metrics, scored_test.count(), scored_validation.count(),
                       confusion_matrix(scored_test, data.label, data.classes))
    finally:
        scored_test.unpersist()
        scored_validation.unpersist()


def metric_name(name: str) -> str:
    """A name MLflow accepts as a metric key (quarantine reasons may name any column)."""
    return re.sub(r"[^\w\-./ ]", ".", name)


def train_and_record(spark, config: PipelineConfigBase, data: XGBoostData, config_sections: Sequence[str],
                     lineage: Mapping[str, str] | None = None) -> XGBoostResult:
    """Fit features + XGBoost on the training rows (early stopping on the validation rows), measure the test
    rows against a trivial baseline, and record everything in one MLflow run: the configuration's
    ``config_sections``, the input files (with ``lineage`` tags), ingest statistics, metrics, rows, the
    committed model and its report. The model is registered as a new version; it takes the alias (``champion``)
    when there is none yet or it beats the holder on these test rows."""
    started = time.time()
    stats, test_stats = data.ingest_stats, data.test_ingest_stats
    with_validation = config.split.validation_fraction > 0
    estimator = estimator_for(config, data, spark)
    with RunRecorder(spark, config) as recorder:
        recorder.log_config(config_sections)
        recorder.log_lineage(stats.input_files + (test_stats.input_files if test_stats else []), **(lineage or {}))
        recorder.log_json(asdict(stats), "ingest_stats.json")
        if test_stats:
            recorder.log_json(asdict(test_stats), "ingest_test_stats.json")

        fit_started = time.time()
        model = fit_model(data, estimator, on_retry=lambda attempt, reason: recorder.set_tags(
            {"fit_retries": str(attempt), "fit_retry_reason": reason[:500]}))
        fit_seconds = time.time() - fit_started

        evaluate_started = time.time()
        held_out = evaluate_held_out(model, data, with_validation)
        if held_out.confusion:
            recorder.log_json(held_out.confusion, "confusion_matrix.json")
        rows = {"rows_in": stats.rows_in, "rows_valid": stats.rows_valid, "rows_quarantined": stats.rows_quarantined,
                "rows_test": held_out.rows_test, "rows_validation": held_out.rows_validation}
        from_input = 0 if test_stats else rows["rows_test"]  # a fixed holdout's rows are not the input's
        rows["rows_train"] = rows["rows_valid"] - from_input - rows["rows_validation"]
        if test_stats:
            rows.update(rows_test_in=test_stats.rows_in, rows_test_quarantined=test_stats.rows_quarantined)
        metrics = {**held_out.metrics,
                   **baseline_metrics(data.splits.train, data.splits.test, data.label, data.classes)}
        metrics["fit_seconds"] = fit_seconds
        best = xgboost_stage(model, data).get_booster().attr("best_iteration")
        metrics["best_iteration"] = int(best) if best is not None else None
        if data.noise_floor_rmse:
            metrics["noise_floor_rmse"] = data.noise_floor_rmse
            metrics["test_rmse_over_floor"] = metrics["test_rmse"] / data.noise_floor_rmse
        recorder.log_metrics({**metrics, **rows, **{metric_name(f"quarantined_{reason}"): n
                                                    for reason, n in stats.quarantined_by_reason.items()}})

        store_started = time.time()
        model_uri = recorder.commit_model(model)
        test_metric = f"test_{data.test_metric}"
        promotion = recorder.register(model_uri, test_metric, metrics[test_metric], "minimize", data.judge)
        report_started = time.time()
        scored = model.transform(data.splits.test)
        report = record_xgboost_report(
            recorder, xgboost_stage(model, data), scored, data.label, metrics={**metrics, **rows},
            rows_test=rows["rows_test"], model_uri=model_uri, class_names=data.classes,
            feature_names=vector_slot_names(scored, data.features) if isinstance(data.features, str) else None)
        stage_seconds = dict(zip(STAGES, (fit_seconds, store_started - evaluate_started,
                                          report_started - store_started, time.time() - report_started)))
    return XGBoostResult(run_id=recorder.run_id, model_uri=model_uri, task=data.task,
                         label=data.label_name or data.label, metrics=metrics, rows=rows,
                         tracking_uri=recorder.tracking_uri, seconds=time.time() - started,
                         stage_seconds=stage_seconds, quarantined_by_reason=stats.quarantined_by_reason,
                         classes=data.classes, noise_floor_rmse=data.noise_floor_rmse, report=report,
                         promotion=promotion)


def summary(result: XGBoostResult, config: PipelineConfigBase) -> str:
    """The lines a job prints after an XGBoost run."""
    r, m = result.rows, result.metrics
    share = r["rows_quarantined"] / r["rows_in"] if r["rows_in"] else 0.0
    by_count = sorted(result.quarantined_by_reason.items(), key=lambda item: -item[1])
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in by_count[:8]) + (
        f", {len(by_count) - 8} more reasons" if len(by_count) > 8 else "")
    lines = [
        f"{config.pipeline} (XGBoost {result.task} of {result.label!r}) · run date {run_date(config)} · "
        f"MLflow run {result.run_id} · {result.seconds:.0f} s",
        f"  rows read {r['rows_in']:,} · quarantined {r['rows_quarantined']:,} ({share:.1%})"
        + (f": {reasons}" if reasons else ""),
        *([f"  test rows from input.test_uri: read {r['rows_test_in']:,} · quarantined {r['rows_test_quarantined']:,}"]
          if "rows_test_in" in r else []),
        f"  trained on {r['rows_train']:,} (validation {r['rows_validation']:,}, test {r['rows_test']:,})"
        + (f" · best iteration {m['best_iteration']}" if m.get("best_iteration") is not None else ""),
    ]
    if result.task == "regression":
        lines.append(f"  test RMSE {m['test_rmse']:.3f} (predicting the mean: {m['baseline_test_rmse']:.3f}) · "
                     f"MAE {m['test_mae']:.3f} · R² {m['test_r2']:.4f}"
                     + (f" · noise floor {result.noise_floor_rmse:.3f} (RMSE/floor {m['test_rmse_over_floor']:.2f})"
                        if result.noise_floor_rmse else ""))
    else:
        auc = m.get("test_auc")
        lines.append(f"  test accuracy {m['test_accuracy']:.4f} (majority class: {m['baseline_test_accuracy']:.4f}) · "
                     f"macro-F1 {m['test_macro_f1']:.4f} · log loss {m['test_log_loss']:.4f} "
                     f"(class priors: {m['baseline_test_log_loss']:.4f})"
                     + (f" · AUC {auc:.4f}" if auc is not None and not math.isnan(auc) else ""))
        lines.append(f"  classes {', '.join(result.classes or [])}")
    lines += [
        "  time    " + " · ".join(f"{stage} {seconds:.0f} s" for stage, seconds in result.stage_seconds.items())
        + f" · total {result.seconds:.0f} s",
        f"  model   {result.model_uri}",
        *([f"  registry {result.promotion.summary()}"] if result.promotion else []),
        *([f"  report  {result.report}"] if result.report else []),
        f"  metrics {result.tracking_uri} (experiment {config.store.experiment or config.pipeline})",
    ]
    return "\n".join(lines)
