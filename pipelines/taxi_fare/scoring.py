"""Scoring new TLC trip files with the taxi fare model: the ingest's reading, mapping and rules, the fare optional.

Files are read, mapped to the canonical trip schema and validated by :mod:`pipelines.taxi_fare.ingest`, with the
same configuration keys (``ingest.format``, ``ingest.tlc_schema``, ``ingest.columns``, ``ingest.passenger_max``,
``ingest.distance_max_miles``). The fare is what the model predicts, so when scoring it may be absent from the
files, empty, non-numeric or out of range: no trip is quarantined for its fare (the fare is copied to the
predictions when present). Every other rule quarantines as at ingest, with the same reasons.
"""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.taxi_fare import ingest as tlc_ingest
from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.config import TaxiFareConfig, input_format, validation_rules
from spark_ml_pipeline.ingest.files import count_input_rows, list_input_files
from spark_ml_pipeline.ingest.quarantine import RAW_LINE, REASON, SOURCE_FILE, with_raw_line
from spark_ml_pipeline.runtime.io import to_uri
from spark_ml_pipeline.score.scorer import PipelineScorer, ScoringInput

OUTPUTS = ["prediction"]
# Copied to the predictions as read (before the model's stages fill coordinates from zones): the trip itself,
# its fare when the file has one, and the file it came from.
KEYS = [*tlc.CANONICAL_ORDER, SOURCE_FILE]


def trips_reader(config: TaxiFareConfig):
    file_format, requested, rules = input_format(config), config.ingest.tlc_schema, validation_rules(config)

    def read(spark: SparkSession, source: str) -> ScoringInput:
        source = to_uri(source)
        files = list_input_files(spark, source)
        tagged = with_raw_line(tlc_ingest.tagged_trips(spark, files, file_format, requested, rules,
                                                       label_required=False,
                                                       spellings=config.ingest.spellings()).rows)
        return ScoringInput(valid=tagged.where(F.col(REASON).isNull()).drop(REASON, RAW_LINE),
                            quarantine=tagged.where(F.col(REASON).isNotNull()),
                            rows_in=count_input_rows(spark, source, file_format, files), keys=list(KEYS))

    return read


def scorer(spark: SparkSession, config: TaxiFareConfig) -> PipelineScorer:
    return PipelineScorer(read=trips_reader(config), outputs=list(OUTPUTS))
