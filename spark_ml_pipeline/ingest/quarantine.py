"""Validation with a quarantine: every input row lands in ``valid`` or in ``quarantine`` with a ``reason``.

A pipeline supplies its rules as (reason, row-is-bad condition) pairs; a row is quarantined for the first rule
it breaks. :func:`commit` writes both sets and ``_ingest.json`` atomically, after checking
``rows_in == rows_valid + rows_quarantined`` against a count of the input made independently of parsing:
nothing is lost, nothing half-written is visible, and rerunning a date replaces its output whole.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join

VALID, QUARANTINE, STATS = "valid", "quarantine", "_ingest.json"
REASON, RAW_LINE, SOURCE_FILE = "reason", "raw_line", "source_file"
QUARANTINE_ONLY_COLUMNS = (REASON, RAW_LINE)

Rule = tuple[str, Column]  # (reason, condition that is true for a bad row)


@dataclass
class IngestStats:
    input: str
    schema: str  # which declared schema the input was read with (e.g. the TLC generation)
    input_format: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    input_files: list[tuple[str, int, int]] = field(default_factory=list)


def tag_rows(df: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """``reason``: the first rule the row breaks, null for a valid row."""
    return df.withColumn(REASON, F.coalesce(*[F.when(bad, F.lit(name)) for name, bad in rules], F.lit(None)))


def commit(spark: SparkSession, tagged: DataFrame, output: str, *, rows_in: int, source: str, schema: str,
           input_format: str, files: list) -> IngestStats:
    """Write ``output/valid`` + ``output/quarantine`` + stats in one atomic commit, rows accounted for."""
    fs = HadoopFS(spark)
    with atomic_output(spark, output) as temporary:
        status = F.when(F.col(REASON).isNull(), F.lit(VALID)).otherwise(F.lit(QUARANTINE))
        tagged.withColumn("status", status).write.partitionBy("status").parquet(join(temporary, "_tagged"))
        for name in (VALID, QUARANTINE):
            tagged_dir = join(temporary, "_tagged", f"status={name}")
            if not fs.exists(tagged_dir):  # no row of that kind: still publish an empty dataset
                spark.createDataFrame([], tagged.schema).write.parquet(tagged_dir)
            fs.rename(tagged_dir, join(temporary, name))
        fs.delete(join(temporary, "_tagged"))
        valid_count = spark.read.parquet(join(temporary, VALID)).count()
        by_reason = {row[REASON]: row["count"] for row in
                     spark.read.parquet(join(temporary, QUARANTINE)).groupBy(REASON).count().collect()}
        quarantined = sum(by_reason.values())
        if valid_count + quarantined != rows_in:
            raise DataError(f"{source}: read {rows_in} rows but accounted for {valid_count} valid + "
                            f"{quarantined} quarantined; refusing to commit")
        stats = IngestStats(input=source, schema=schema, input_format=input_format, rows_in=rows_in,
                            rows_valid=valid_count, rows_quarantined=quarantined,
                            quarantined_by_reason=dict(sorted(by_reason.items())), input_files=files)
        fs.write_text(join(temporary, STATS), json.dumps(asdict(stats), indent=2))
    return stats


def read_valid(spark: SparkSession, output: str) -> DataFrame:
    """The valid rows, without the quarantine-only columns."""
    return spark.read.parquet(join(output, VALID)).drop(*QUARANTINE_ONLY_COLUMNS)


def read_quarantine(spark: SparkSession, output: str) -> DataFrame:
    return spark.read.parquet(join(output, QUARANTINE))


def read_stats(spark: SparkSession, output: str) -> IngestStats:
    data = json.loads(HadoopFS(spark).read_text(join(output, STATS)))
    data["input_files"] = [tuple(f) for f in data["input_files"]]
    return IngestStats(**data)


def require_ingested(spark: SparkSession, output: str, what: str) -> None:
    if not HadoopFS(spark).exists(join(output, STATS)):
        raise DataError(f"{output}: no ingested data for {what}; run the ingest stage first")
