"""Batch scoring of a tabular pipeline: new files read and validated exactly as ingest does, labels optional.

The scoring input goes through the same reader, type checks and validation rules as the training input
(:mod:`pipelines.tabular.ingest`), except the rules on the label: a row to score has no label yet. Kept next to
the predictions: ``keys`` (default: every declared column the files hold). A classifier also returns its
class probabilities and the predicted original label (``predicted_<label>``).
"""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.tabular.config import TabularConfig
from pipelines.tabular.ingest import resolve_uri, tagged_rows
from pipelines.tabular.pipeline import is_classification, predicted_label_column
from spark_ml_pipeline.ingest.files import count_input_rows, list_input_files
from spark_ml_pipeline.ingest.quarantine import RAW_LINE, REASON, with_raw_line
from spark_ml_pipeline.runs.xgboost_run import PREDICTION, PROBABILITY
from spark_ml_pipeline.score.scorer import PipelineScorer, ScoringInput


def outputs(config: TabularConfig) -> list[str]:
    if is_classification(config):
        return [PREDICTION, PROBABILITY, predicted_label_column(config)]
    return [PREDICTION]


def read(spark: SparkSession, config: TabularConfig, uri: str) -> ScoringInput:
    """The rows of ``uri`` (same format options as ``input``), validated with the ingest rules, label optional."""
    source = resolve_uri(spark, config, uri, key="input")
    files = list_input_files(spark, source)
    tagged = tagged_rows(spark, config, files, label_optional=True)
    keys = list(config.keys) or [c for c in config.columns if c != config.label or c in tagged.columns_found]
    rows = with_raw_line(tagged.rows)
    return ScoringInput(valid=rows.where(F.col(REASON).isNull()).drop(REASON, RAW_LINE),
                        quarantine=rows.where(F.col(REASON).isNotNull()),
                        rows_in=count_input_rows(spark, source, config.input.format, files,
                                                 header=config.input.header or config.input.skip_lines == 1,
                                                 multiline=config.input.multiline),
                        keys=keys)


def scorer(spark: SparkSession, config: TabularConfig) -> PipelineScorer:
    """What ``jobs.score`` needs of a tabular pipeline."""
    return PipelineScorer(read=lambda session, uri: read(session, config, uri), outputs=outputs(config))
