"""Input files on any Hadoop filesystem: listing them, reading delimited text or Parquet, counting rows.

Reading is permissive by design: a line Spark cannot parse is kept whole in ``_corrupt_record`` and a value
that does not fit its declared type becomes null (``try_cast`` downstream), so validation can quarantine the
row with a reason instead of a job failing halfway.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS

CORRUPT = "_corrupt_record"
TIMESTAMP_NTZ_FORMAT = "yyyy-MM-dd HH:mm:ss[.SSSSSS]"


def local_file_stats(paths: Iterable[str | Path]) -> list[tuple[str, int, int]]:
    """(path, size, mtime in ms) of local files, sorted: the input-file record lineage fingerprints."""
    stats = []
    for path in paths:
        info = Path(path).stat()
        stats.append((str(path), info.st_size, int(info.st_mtime * 1000)))
    return sorted(stats)


def list_input_files(spark: SparkSession, source: str) -> list[tuple[str, int, int]]:
    """(uri, size, mtime) of every data file below ``source`` (a path, URI or glob); none is an error."""
    try:
        files = HadoopFS(spark).list_files(source)
    except Exception as exc:  # py4j wraps Hadoop's IOException: name the path, not the stack
        raise DataError(f"{source}: cannot list input files ({str(exc).splitlines()[0]})") from None
    if not files:
        raise DataError(f"{source}: no input files found")
    return files


def csv_header(spark: SparkSession, file: str) -> list[str]:
    """The column names in a CSV file's header line (read without a Spark job, decompressed by its codec)."""
    try:
        line = HadoopFS(spark).first_line(file)
    except Exception as exc:  # py4j wraps the Java exception: name the file and the reason, not the stack
        raise DataError(f"{file}: not readable ({_java_reason(exc)})") from None
    if line is None:
        raise DataError(f"{file}: empty CSV file (a header line is required)")
    return next(csv.reader([line]))


def csv_headers(spark: SparkSession, files: list) -> dict[tuple[str, ...], list]:
    """The input files grouped by their own header (files of one input may order or spell columns differently;
    each group is read with its header, never one file's header applied by position to another)."""
    groups: dict[tuple[str, ...], list] = {}
    for file in files:
        groups.setdefault(tuple(csv_header(spark, file[0])), []).append(file)
    return groups


def _java_reason(exc: Exception) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "Exception:" in line:
            return line.split("Exception:", 1)[-1].strip()[:300] or line.strip()[:300]
    return text.splitlines()[0][:300] if text else type(exc).__name__


def read_csv(spark: SparkSession, source: str, schema: T.StructType) -> DataFrame:
    """CSV with a header, read with ``schema`` in the file's column order; unparsable lines kept whole."""
    return (spark.read.schema(schema.add(T.StructField(CORRUPT, T.StringType(), True)))
            .option("header", True).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
            .option("timestampNTZFormat", TIMESTAMP_NTZ_FORMAT).csv(source))


def read_parquet(spark: SparkSession, source: str) -> DataFrame:
    try:
        return spark.read.parquet(source)
    except Exception as exc:
        raise DataError(f"{source}: not readable as Parquet ({str(exc).splitlines()[0][:300]})") from None


def count_input_rows(spark: SparkSession, source: str, input_format: str, files: list) -> int:
    """Rows in the input, counted independently of parsing (CSV: non-blank lines minus headers)."""
    if input_format == "parquet":
        return read_parquet(spark, source).count()
    lines = spark.read.text(source).where(F.length(F.trim("value")) > 0).count()
    return lines - len(files) if input_format == "csv" else lines
