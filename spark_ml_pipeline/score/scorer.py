"""The scorer: what batch scoring (:mod:`spark_ml_pipeline.score.batch`) needs of a pipeline.

A pipeline that can be scored declares a scorer factory (``PipelineDefinition.scorer``:
``(spark, config) -> Scorer``): how to read and validate new input (the ingest rules, labels optional) and which
model outputs to keep. :class:`PipelineScorer` builds one from a reading function and the outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from pyspark.sql import DataFrame, SparkSession


@dataclass
class ScoringInput:
    valid: DataFrame  # rows that passed the pipeline's validation rules, in the shape the model's first stage expects
    quarantine: DataFrame  # rejected rows, with a `reason` column
    rows_in: int  # counted independently of parsing
    keys: list[str]  # columns copied to the predictions next to the model outputs (e.g. row ids); may be []


@runtime_checkable
class Scorer(Protocol):
    """``read(spark, input URI)``: the input validated (labels optional); ``outputs``: the model output columns
    kept in the predictions, e.g. ``["prediction"]`` or ``["prediction", "probability", ...]``."""

    outputs: list[str]

    def read(self, spark: SparkSession, source: str) -> ScoringInput:
        """The rows of ``source``, validated: the valid ones, the quarantined ones, how many were read."""


@dataclass
class PipelineScorer:
    """A :class:`Scorer` from a reading function and the outputs."""

    read: Callable[[SparkSession, str], ScoringInput]  # (spark, input URI) -> validated input (labels optional)
    outputs: list[str]  # model output columns to keep
