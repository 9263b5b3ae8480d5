"""The ``tabular`` pipeline: any tabular data set -> validate/quarantine -> declared features -> XGBoost -> store.

``ingest`` reads the input as the conf file declares it and commits valid rows + quarantine; ``train`` splits
the valid rows, fits the feature stages and the XGBoost regressor / classifier (early stopping on the
validation rows), measures the test rows against a trivial baseline and records everything with the
:class:`RunRecorder`; ``run`` chains both. String (or numeric) class labels are indexed on the training rows
and an ``IndexToString`` stage at the end of the model turns predictions back into the original labels.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import IndexToString, StringIndexer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.tabular import tabular_feature_stages
from pipelines.tabular.config import TabularConfig
from pipelines.tabular.ingest import holdout_location, ingest, ingest_location
from spark_ml_pipeline.ingest.quarantine import IngestStats, read_stats, read_valid, require_ingested
from spark_ml_pipeline.report.samples import vector_slot_names
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.store.xgboost_report import record_xgboost_report
from spark_ml_pipeline.train.metrics import (classification_metrics_from_counts, confusion_counts,
                                             probabilistic_metrics, regression_metrics)
from spark_ml_pipeline.train.splits import Splits, split_rows
from spark_ml_pipeline.train.xgboost import WorkerLayout, fit_pipeline, xgb_estimator

FEATURES_COLUMN = "features"
PREDICTION, PROBABILITY = "prediction", "probability"


def is_classification(config: TabularConfig) -> bool:
    return config.task != "regression"


def label_index_column(config: TabularConfig) -> str:
    return f"{config.label}_index"


def predicted_label_column(config: TabularConfig) -> str:
    """The original-label prediction a classifier's model adds (e.g. ``predicted_species``)."""
    return f"predicted_{config.label}"


def key_columns(config: TabularConfig) -> list[str]:
    return list(config.keys or config.columns)


def feature_stages(config: TabularConfig) -> list:
    """The declared feature stages, unfitted (the category indexers learn from training rows)."""
    f = config.features
    return tabular_feature_stages(
        numeric=f.numeric,
        indexed=[c for c, spec in f.categorical.items() if spec.encoding == "index"],
        hashed={c: spec.buckets for c, spec in f.categorical.items() if spec.encoding == "hash"},
        datetimes=f.datetime,
        distances={name: spec.columns() for name, spec in f.distances.items()},
        assemble_into=FEATURES_COLUMN)


# --- training data -----------------------------------------------------------------------------------

@dataclass
class TrainingData:
    """Split rows (classification: with the indexed label), fitted feature stages, and the label mapping."""

    splits: Splits
    feature_stages: list
    label: str  # the column the estimator learns (the label, or its index)
    classes: list[str] | None = None  # original class labels by index
    tail: list = field(default_factory=list)  # stages after the estimator (IndexToString)
    stats: IngestStats | None = None
    test_stats: IngestStats | None = None  # of input.test_uri, when the test rows are a fixed holdout


def valid_rows(spark: SparkSession, config: TabularConfig) -> tuple[DataFrame, IngestStats]:
    location = ingest_location(config)
    require_ingested(spark, location, f"{config.pipeline} run date {run_date(config)}")
    return read_valid(spark, location), read_stats(spark, location)


def training_data(spark: SparkSession, config: TabularConfig) -> TrainingData:
    """The committed valid rows of this run date, split; labels indexed and features fitted on train rows."""
    rows, stats = valid_rows(spark, config)
    test, test_stats = None, None
    if config.input.test_uri:
        location = holdout_location(config)
        require_ingested(spark, location, f"{config.pipeline} input.test_uri, run date {run_date(config)}")
        test, test_stats = read_valid(spark, location).select(*config.columns), read_stats(spark, location)
        if test.isEmpty():
            raise DataError(f"input.test_uri: {config.input.test_uri}: no valid rows to test on (see the quarantine "
                            f"in {location})")
    splits = split_rows(rows.select(*config.columns), config.split, key_columns(config), test)
    label, classes, tail = config.label, None, []
    if is_classification(config):
        splits, classes = index_labels(splits, config)
        label = label_index_column(config)
        tail = [IndexToString(inputCol=PREDICTION, outputCol=predicted_label_column(config), labels=classes)]
    fitted = Pipeline(stages=feature_stages(config)).fit(splits.train)
    return TrainingData(splits=splits, feature_stages=list(fitted.stages), label=label, classes=classes, tail=tail,
                        stats=stats, test_stats=test_stats)


def index_labels(splits: Splits, config: TabularConfig) -> tuple[Splits, list[str]]:
    """Class labels -> 0..k-1 (alphabetical: for 0/1 or no/yes the positive class is 1), learnt on train rows."""
    label = config.label
    indexer = StringIndexer(inputCol=label, outputCol=label_index_column(config), stringOrderType="alphabetAsc",
                            handleInvalid="error").fit(splits.train)
    classes = list(indexer.labels)
    unseen = sorted({str(r[0]) for r in splits.validation.unionByName(splits.test).select(
        F.col(label).cast("string")).distinct().collect()} - set(classes))
    if unseen:
        raise DataError(f"label {label!r}: class(es) {', '.join(unseen)} occur in validation/test rows but not in "
                        "the training rows; more rows of them, or another split, are needed")
    if config.task == "binary" and len(classes) != 2:
        raise DataError(f"label {label!r}: task binary needs 2 classes in the training rows, found {len(classes)} "
                        f"({', '.join(classes[:10])})")
    if config.task == "multiclass" and len(classes) < 3:
        raise DataError(f"label {label!r}: task multiclass found {len(classes)} class(es) in the training rows "
                        f"({', '.join(classes)}); with two classes use task: binary")
    return splits.map(indexer.transform), classes


# --- evaluation --------------------------------------------------------------------------------------

def evaluator(config: TabularConfig, label: str, classes: list[str] | None):
    """A scored frame -> dict of floats: RMSE/MAE/R² (regression) or log loss, AUC (binary), accuracy,
    macro-F1 (classification)."""
    def evaluate(scored: DataFrame) -> dict:
        if not is_classification(config):
            metrics = regression_metrics(scored, label)
            metrics.pop("n")
            return metrics
        metrics = probabilistic_metrics(scored, label, vector_to_array(F.col(PROBABILITY)), len(classes))
        counts = confusion_counts(scored, label, F.col(PREDICTION))
        quality = classification_metrics_from_counts(counts, len(classes))
        metrics.update(accuracy=quality["accuracy"], macro_f1=quality["macro_f1"])
        return metrics
    return evaluate


def confusion_matrix(scored: DataFrame, label: str, classes: list[str]) -> dict:
    """Rows are true classes, columns predicted classes, in the order of ``labels``."""
    counts = confusion_counts(scored, label, F.col(PREDICTION))
    k = len(classes)
    return {"labels": classes, "rows": "true class", "columns": "predicted class",
            "matrix": [[counts.get((y, p), 0) for p in range(k)] for y in range(k)]}


def baseline_metrics(data: TrainingData, config: TabularConfig) -> dict:
    """What a model without features scores on the test rows: the training mean (regression), or the training
    class frequencies (log loss) and the majority class (accuracy)."""
    train, test = data.splits.train, data.splits.test
    if not is_classification(config):
        mean = train.agg(F.avg(data.label)).first()[0]
        row = test.agg(F.sqrt(F.avg((F.col(data.label) - F.lit(mean)) ** 2)), F.avg(F.abs(F.col(data.label) -
                                                                                          F.lit(mean)))).first()
        return {"baseline_test_rmse": float(row[0]), "baseline_test_mae": float(row[1])}
    frequency = {int(r[0]): r[1] for r in train.groupBy(data.label).count().collect()}
    total = sum(frequency.values())
    majority = max(frequency, key=frequency.get)
    prior = F.element_at(F.array(*[F.lit(frequency.get(k, 0) / total) for k in range(len(data.classes))]),
                         F.col(data.label).cast("int") + 1)
    row = test.agg(F.avg((F.col(data.label).cast("int") == majority).cast("double")),
                   F.avg(-F.log(F.greatest(prior, F.lit(1e-15))))).first()
    return {"baseline_test_accuracy": float(row[0]), "baseline_test_log_loss": float(row[1])}


# --- stages ------------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    task: str
    metrics: dict
    rows: dict
    quarantined_by_reason: dict
    tracking_uri: str
    seconds: float
    classes: list[str] | None = None
    report: str | None = None  # where the run's report.html is


def _metric_name(name: str) -> str:
    return re.sub(r"[^\w\-./ ]", ".", name)


def fit_model(data: TrainingData, config: TabularConfig, estimator) -> PipelineModel:
    """Feature stages + estimator fitted on train (validation rows flagged), then the label mapping."""
    model = fit_pipeline(data.feature_stages, estimator, data.splits.train_with_indicator())
    return PipelineModel([*model.stages, *data.tail]) if data.tail else model


def train(spark: SparkSession, config: TabularConfig) -> TrainResult:
    """Fit features + XGBoost on train (early stopping on validation), evaluate on test, record it all."""
    started = time.time()
    data = training_data(spark, config)
    stats = data.stats
    has_validation = config.split.validation_fraction > 0
    estimator = xgb_estimator(config.model, FEATURES_COLUMN, data.label, config.task, device=config.compute.device,
                              with_validation=has_validation, layout=WorkerLayout.of(config.model, spark.sparkContext))
    evaluate = evaluator(config, data.label, data.classes)

    with RunRecorder(spark, config) as recorder:
        recorder.log_config(("input", "schema", "label", "task", "keys", "features", "validation", "split", "model",
                             "compute"))
        test_stats = data.test_stats
        recorder.log_lineage(stats.input_files + (test_stats.input_files if test_stats else []),
                             input_uri=config.input.uri, **({"test_uri": config.input.test_uri} if test_stats else {}))
        recorder.log_json(asdict(stats), "ingest_stats.json")
        if test_stats:
            recorder.log_json(asdict(test_stats), "ingest_test_stats.json")

        fit_started = time.time()
        model = fit_model(data, config, estimator)
        fit_seconds = time.time() - fit_started
        columns = [data.label, PREDICTION, *([PROBABILITY] if is_classification(config) else [])]
        scored_test = model.transform(data.splits.test).select(*columns).cache()
        scored_validation = model.transform(data.splits.validation).select(*columns).cache()
        try:
            test = evaluate(scored_test)
            validation = evaluate(scored_validation) if has_validation else {}
            rows = {"rows_in": stats.rows_in, "rows_valid": stats.rows_valid,
                    "rows_quarantined": stats.rows_quarantined, "rows_test": scored_test.count(),
                    "rows_validation": scored_validation.count()}
            # the test rows come from the rows of input.uri, or from input.test_uri (a fixed holdout)
            from_input = 0 if config.input.test_uri else rows["rows_test"]
            rows["rows_train"] = rows["rows_valid"] - from_input - rows["rows_validation"]
            if test_stats:
                rows.update(rows_test_in=test_stats.rows_in, rows_test_quarantined=test_stats.rows_quarantined)
            if is_classification(config):
                recorder.log_json(confusion_matrix(scored_test, data.label, data.classes), "confusion_matrix.json")
        finally:
            scored_test.unpersist()
            scored_validation.unpersist()
        metrics = {f"test_{k}": v for k, v in test.items()}
        metrics.update({f"validation_{k}": v for k, v in validation.items()})
        metrics.update(baseline_metrics(data, config))
        metrics["fit_seconds"] = fit_seconds
        booster = model.stages[len(data.feature_stages)].get_booster()
        best = booster.attr("best_iteration")
        metrics["best_iteration"] = int(best) if best is not None else None
        recorder.log_metrics({**metrics, **rows, **{_metric_name(f"quarantined_{reason}"): n for reason, n
                                                    in stats.quarantined_by_reason.items()}})
        model_uri = recorder.commit_model(model)
        scored = model.transform(data.splits.test)
        report = record_xgboost_report(
            recorder, model.stages[len(data.feature_stages)], scored, data.label, metrics={**metrics, **rows},
            rows_test=rows["rows_test"], model_uri=model_uri, feature_names=vector_slot_names(scored, FEATURES_COLUMN),
            class_names=data.classes if is_classification(config) else None)
    return TrainResult(run_id=recorder.run_id, model_uri=model_uri, task=config.task, metrics=metrics, rows=rows,
                       quarantined_by_reason=stats.quarantined_by_reason, tracking_uri=recorder.tracking_uri,
                       seconds=time.time() - started, classes=data.classes, report=report)


def run(spark: SparkSession, config: TabularConfig) -> TrainResult:
    """The whole pipeline: ingest (validate, quarantine) -> features + XGBoost -> store."""
    ingest(spark, config)
    return train(spark, config)


def summary(result: TrainResult, config: TabularConfig) -> str:
    r, m = result.rows, result.metrics
    share = r["rows_quarantined"] / r["rows_in"] if r["rows_in"] else 0.0
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in
                        sorted(result.quarantined_by_reason.items(), key=lambda item: -item[1])[:6])
    lines = [
        f"{config.pipeline} (tabular, {config.task} of {config.label!r}) · run date {run_date(config)} · "
        f"MLflow run {result.run_id} · {result.seconds:.0f} s (fit {m['fit_seconds']:.0f} s)",
        f"  rows read {r['rows_in']:,} · quarantined {r['rows_quarantined']:,} ({share:.1%})"
        + (f": {reasons}" if reasons else ""),
        *([f"  test rows from input.test_uri: read {r['rows_test_in']:,} · quarantined {r['rows_test_quarantined']:,}"]
          if "rows_test_in" in r else []),
        f"  trained on {r['rows_train']:,} (validation {r['rows_validation']:,}, test {r['rows_test']:,})"
        + (f" · best iteration {m['best_iteration']}" if m.get("best_iteration") is not None else ""),
    ]
    if result.task == "regression":
        lines.append(f"  test RMSE {m['test_rmse']:.3f} (predicting the mean: {m['baseline_test_rmse']:.3f}) · "
                     f"MAE {m['test_mae']:.3f} · R² {m['test_r2']:.4f}")
    else:
        auc = m.get("test_auc")
        lines.append(f"  test accuracy {m['test_accuracy']:.4f} (majority class: {m['baseline_test_accuracy']:.4f}) · "
                     f"macro-F1 {m['test_macro_f1']:.4f} · log loss {m['test_log_loss']:.4f} "
                     f"(class priors: {m['baseline_test_log_loss']:.4f})"
                     + (f" · AUC {auc:.4f}" if auc is not None and not math.isnan(auc) else ""))
        lines.append(f"  classes {', '.join(result.classes or [])}")
    lines += [f"  model   {result.model_uri}", *([f"  report  {result.report}"] if result.report else []),
              f"  metrics {result.tracking_uri} (experiment {config.store.experiment or config.pipeline})"]
    return "\n".join(lines)
