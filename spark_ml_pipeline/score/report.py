"""The report of one scored date: what was read, scored and quarantined (by reason), and the predictions'
distribution against the training run's on its test set (``prediction_profile.json`` of the model's run).

It is written as ``_report.html`` inside the scored date's directory before that directory is committed, so
it appears with the predictions it describes or not at all."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame

from spark_ml_pipeline.report import sections
from spark_ml_pipeline.report.document import Report, table_block
from spark_ml_pipeline.report.profile import PROFILE_ARTIFACT, prediction_profile
from spark_ml_pipeline.report.samples import sample_rows
from spark_ml_pipeline.runtime.errors import ConfigError

REPORT_FILE = "_report.html"


def training_profile(client: MlflowClient | None, run_id: str | None) -> tuple[dict | None, str]:
    """The model's run's prediction profile, or None and why not (no run, no such artifact, no store)."""
    if client is None or not run_id:
        return None, "the model has no MLflow run"
    try:
        with tempfile.TemporaryDirectory(prefix="profile-") as directory:
            path = client.download_artifacts(run_id, PROFILE_ARTIFACT, directory)
            return json.loads(Path(path).read_text()), f"training run {run_id[:8]}"
    except (MlflowException, OSError, ValueError, ConfigError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return None, f"run {run_id[:8]} ({first})"


def profiled_column(outputs: Sequence[str], reference: Mapping[str, Any] | None) -> str:
    """The output compared with training: class probabilities when the training profile is of classes and the
    scorer keeps them, else the first output."""
    if reference and reference.get("kind") == "classes" and "probability" in outputs:
        return "probability"
    return outputs[0]


def scoring_report(predictions: DataFrame, outputs: Sequence[str], facts: Mapping[str, Any],
                   quarantined_by_reason: Mapping[str, int], reference: dict | None, reference_name: str,
                   max_rows: int = 5000) -> tuple[Report, dict[str, float]]:
    """The page, and the drift measures (also shown in it)."""
    report = Report(f"score {facts.get('pipeline', '')} · run {facts.get('run date', '')}", dict(facts))
    if quarantined_by_reason:
        report.section("Quarantined rows by reason", [table_block(
            [{"reason": reason, "rows": n} for reason, n in sorted(quarantined_by_reason.items(),
                                                                   key=lambda item: -item[1])])])
    column = profiled_column(outputs, reference)
    sample = sample_rows(predictions, [column], max_rows)
    classes = reference.get("classes") if reference and reference.get("kind") == "classes" else None
    current = prediction_profile(sample[column], classes)
    gaps = sections.prediction_drift(report, current, reference, reference_name)
    return report, gaps
