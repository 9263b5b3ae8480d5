"""The report of an XGBoost run (taxi fare and every tabular pipeline): metrics, learning curves per boosting
round, and from a sample of the scored test set either predicted vs actual, residuals by decile and feature
importance by gain (regression) or the confusion matrix, per-class precision / recall, ROC / PR curves and
calibration (classification)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from pyspark.sql import DataFrame

from spark_ml_pipeline.report import sections
from spark_ml_pipeline.report.profile import prediction_profile
from spark_ml_pipeline.report.samples import sample_rows, stacked
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.train.xgboost import feature_importance, learning_history


def record_xgboost_report(recorder: RunRecorder, xgb_model, scored_test: DataFrame, label: str, *,
                          metrics: Mapping[str, Any], rows_test: int | None, model_uri: str,
                          class_names: Sequence[str] | None = None, feature_names: Sequence[str] | None = None,
                          prediction: str = "prediction", probability: str = "probability") -> str | None:
    """Build and log the run's report; None when ``report.enabled`` is off. ``class_names`` given: a
    classifier whose ``probability`` column holds the class probabilities."""
    config = recorder.config.report
    if not config.enabled:
        return None
    history = learning_history(xgb_model)
    report = recorder.report(model="xgboost", rows_test=rows_test,
                             rounds=len(next(iter(history.values()), [])) or None)
    sections.metrics_table(report, metrics)
    sections.learning_curves(report, history, x_title="boosting round")
    importance = feature_importance(xgb_model, feature_names)
    if class_names is None:
        sample = sample_rows(scored_test, [label, prediction], config.sample_rows, total=rows_test)
        sections.regression(report, sample[label].to_numpy(float), sample[prediction].to_numpy(float), label,
                            rows_test, importance)
        profile = prediction_profile(sample[prediction])
    else:
        sample = sample_rows(scored_test, [label, probability], config.sample_rows, total=rows_test)
        probabilities = stacked(sample[probability])
        sections.classification(report, sample[label].to_numpy().astype(int), probabilities, class_names,
                                rows_test, importance)
        profile = prediction_profile(sample[probability], class_names)
    return recorder.log_report(report, profile, model_uri)
