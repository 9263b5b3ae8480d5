"""Input files on any Hadoop filesystem: listing them, their CSV headers and Parquet footers (read on the driver,
no Spark job), the file a failed job could not read, and counting rows.

A file that cannot be read is an :class:`UnreadableFile` naming it and the root cause in one line; whether the
run fails or skips it is the ingest's choice (``ingest.on_unreadable_file``).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS

CORRUPT = "_corrupt_record"


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


class UnreadableFile(DataError):
    """One input file cannot be read (corrupt, truncated, not of its format); ``ingest.on_unreadable_file``
    decides whether the run fails or skips it, recording it in the ingest statistics."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: not readable ({reason})")
        self.file, self.reason = file, reason


def csv_header(spark: SparkSession, file: str, delimiter: str = ",") -> list[str] | None:
    """The column names in a CSV file's header line (read without a Spark job, decompressed by its codec,
    a byte-order mark and surrounding blanks removed); None for an empty file."""
    try:
        line = HadoopFS(spark).first_line(file)
    except Exception as exc:  # py4j wraps the Java exception: name the file and the reason, not the stack
        raise UnreadableFile(file, java_reason(exc)) from None
    if line is None:
        return None
    return [name.strip().lstrip("\ufeff").strip() for name in next(csv.reader([line], delimiter=delimiter))]


def csv_headers(spark: SparkSession, files: list, delimiter: str = ",") -> tuple[dict[tuple[str, ...], list], list]:
    """The input files grouped by their own header (files of one input may order or spell columns differently;
    each group is read with its header, never one file's header applied by position to another), and the
    empty files (no header line: no rows)."""
    groups: dict[tuple[str, ...], list] = {}
    empty = []
    for file in files:
        header = csv_header(spark, file[0], delimiter)
        if header is None:
            empty.append(file)
        else:
            groups.setdefault(tuple(header), []).append(file)
    return groups, empty


def parquet_footers(spark: SparkSession, files: list) -> dict[str, list]:
    """The Parquet files grouped by the schema in their footer (read on the driver, no Spark job): files of one
    input whose column types differ are read apart and cast to the declared types, never merged by Spark."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    groups: dict[str, list] = {}
    for file in files:
        try:
            path = jvm.org.apache.hadoop.fs.Path(file[0])
            reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
                jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, conf))
            try:
                schema = reader.getFooter().getFileMetaData().getSchema().toString()
            finally:
                reader.close()
        except Exception as exc:
            raise UnreadableFile(file[0], java_reason(exc)) from None
        groups.setdefault(schema, []).append(file)
    return groups


def parquet_row_count(spark: SparkSession, directory: str) -> int:
    """Rows in the Parquet files below ``directory``, summed from their footers (no Spark job, no data read)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    total = 0
    for uri, _, _ in HadoopFS(spark).list_files(directory):
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
            jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(uri), conf))
        try:
            total += int(reader.getRecordCount())
        finally:
            reader.close()
    return total


def java_reason(exc: Exception) -> str:
    """The root cause of a Py4J-wrapped Java exception, in one line (its last ``Caused by``, else its first
    line naming an exception)."""
    text = str(exc)
    causes = [line.split("Caused by:", 1)[1].strip() for line in text.splitlines() if "Caused by:" in line]
    lines = causes[-1:] or [line for line in text.splitlines() if "Exception:" in line][:1]
    for line in lines:
        reason = line.split("Exception:", 1)[-1].strip() or line.strip()
        return reason[:300]
    return text.splitlines()[0][:300] if text else type(exc).__name__


_FAILED_READ = re.compile(r"Encountered error while reading file (\S+?)\.(?:\s|$)")


def unreadable_file_of(exc: Exception, files: list) -> UnreadableFile | None:
    """The input file a failed Spark job could not read (Spark names it: FAILED_READ_FILE), if one of ``files``."""
    text = str(exc)
    match = _FAILED_READ.search(text)
    if not match:
        return None
    failed = urlparse(match.group(1)).path
    file = next((f[0] for f in files if urlparse(f[0]).path == failed), None)
    if file is None:
        return None
    hint = text[match.end():].splitlines()[0].split("SQLSTATE", 1)[0].strip()  # e.g. a column's type mismatch
    return UnreadableFile(file, hint or java_reason(exc))


def read_parquet(spark: SparkSession, source: str) -> DataFrame:
    try:
        return spark.read.parquet(source)
    except Exception as exc:
        raise DataError(f"{source}: not readable as Parquet ({str(exc).splitlines()[0][:300]})") from None


def count_input_rows(spark: SparkSession, source: str, input_format: str, files: list, header: bool = True,
                     multiline: bool = False) -> int:
    """Rows in the input, counted independently of parsing (CSV: non-blank lines minus a header per non-empty
    file; Parquet and ORC: the files' own counts; multi-line JSON: the objects). Batch scoring checks its
    accounting with it; ingest counts while it writes."""
    if input_format == "parquet":
        return read_parquet(spark, source).count()
    if input_format == "orc":
        return spark.read.orc(*[f[0] for f in files]).count()
    if input_format == "json" and multiline:  # a malformed file is one record, as the reader makes it
        return spark.read.option("multiLine", True).option("mode", "PERMISSIVE").json([f[0] for f in files]).count()
    lines = spark.read.text([f[0] for f in files]).where(F.length(F.trim("value")) > 0).count()
    if input_format == "csv" and header:
        return lines - sum(csv_header(spark, f[0]) is not None for f in files)
    return lines
