"""Scoring new images with the Fashion-MNIST classifier: Parquet rows of ``row_id`` and ``pixels``.

The input has the ingested images' shape (``row_id`` long, ``pixels`` an array of 784 integers, 28 x 28 in
row-major order, 0..255; a ``label`` column is optional and copied to the predictions when present). A row is
quarantined, with its reason, when its ``row_id`` is missing, its pixels are missing, not 784 long, or hold a
value outside 0..255 (or a null). ``prediction`` is the 10 class probabilities (array<float>).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_ml_pipeline.ingest.fashion_mnist import IMAGE_SIZE
from spark_ml_pipeline.ingest.files import count_input_rows, list_input_files, read_parquet
from spark_ml_pipeline.ingest.quarantine import REASON, tag_rows
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import to_uri
from spark_ml_pipeline.score.scorer import PipelineScorer, ScoringInput

ROW_ID, PIXELS, LABEL = "row_id", "pixels", "label"
PIXEL_COUNT = IMAGE_SIZE * IMAGE_SIZE
PIXEL_RANGE = (0, 255)
OUTPUTS = ["prediction"]
_INTEGERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def check_columns(df: DataFrame, source: str) -> None:
    """``row_id`` and ``pixels`` (an array of integers) must exist; anything else is one clear DataError."""
    types = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in (ROW_ID, PIXELS) if c not in types]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)} "
                        f"(expected row_id long, pixels array<smallint> of {PIXEL_COUNT} values 0..255)")
    pixels = types[PIXELS]
    if not (isinstance(pixels, T.ArrayType) and isinstance(pixels.elementType, _INTEGERS)):
        raise DataError(f"{source}: column pixels is {pixels.simpleString()}, expected an array of integers 0..255")
    if not isinstance(types[ROW_ID], _INTEGERS):
        raise DataError(f"{source}: column row_id is {types[ROW_ID].simpleString()}, expected an integer")


def validation_rules() -> list[tuple[str, Column]]:
    """(reason, row-is-bad) in order; a row is quarantined for the first rule it breaks."""
    low, high = PIXEL_RANGE
    pixels = F.col(PIXELS)
    return [
        ("missing_row_id", F.col(ROW_ID).isNull()),
        ("missing_pixels", pixels.isNull()),
        ("wrong_pixel_count", F.size(pixels) != PIXEL_COUNT),
        ("pixel_out_of_range", F.exists(pixels, lambda p: p.isNull() | (p < low) | (p > high))),
    ]


def read_images(spark: SparkSession, source: str) -> ScoringInput:
    source = to_uri(source)
    files = list_input_files(spark, source)
    raw = read_parquet(spark, source)
    check_columns(raw, source)
    tagged = tag_rows(raw, validation_rules())
    keys = [ROW_ID, *([LABEL] if LABEL in raw.columns else [])]
    valid = (tagged.where(F.col(REASON).isNull()).drop(REASON)
             .withColumn(PIXELS, F.col(PIXELS).cast("array<smallint>")))  # the ingested images' type
    return ScoringInput(valid=valid, quarantine=tagged.where(F.col(REASON).isNotNull()),
                        rows_in=count_input_rows(spark, source, "parquet", files), keys=keys)


def scorer(spark: SparkSession, config) -> PipelineScorer:
    return PipelineScorer(read=read_images, outputs=list(OUTPUTS))
