"""Declared tables: the files of one input read into the columns a pipeline declares, each value's raw text kept.

A pipeline declares its columns (name, Spark SQL type, the spellings files use for it). Every file is read with
its *own* layout: CSV files grouped by their header line, Parquet files by the schema in their footer, so files
of one input may order, spell or type their columns differently. Text is read as text, and every column is
``try_cast`` to its declared type: a value that does not fit (``abc`` for a number, ``NaN`` or ``inf``, a
timestamp Spark cannot represent) becomes null with its raw text kept beside it (``__raw_<column>``), so
validation can quarantine or count it; nothing fails halfway through a job. A line Spark cannot split into the
header's fields (short, long, unbalanced quotes) keeps its whole text in ``raw_line``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_ml_pipeline.ingest.files import CORRUPT, csv_headers, parquet_footers
from spark_ml_pipeline.ingest.quarantine import RAW_LINE, RAW_PREFIX, SOURCE_FILE
from spark_ml_pipeline.runtime.errors import DataError

FRACTIONAL = ("float", "double")
INTEGRAL = ("tinyint", "smallint", "int", "bigint")
TIME = ("date", "timestamp", "timestamp_ntz")
WIDE_DECIMAL = "decimal(38,9)"  # holds every bigint and the fraction that tells 1.0 from 1.5


EPOCH_UNITS = {"epoch_seconds": 1, "epoch_millis": 1000}  # numbers counting from 1970-01-01 00:00 UTC


@dataclass(frozen=True)
class WrittenAs:
    """How a column's values are written in text files, when not as Spark reads them by default: a date or
    timestamp by a Spark datetime pattern (``yyyy/MM/dd``, ``dd.MM.yyyy HH:mm``, ``yyyy-MM-dd'T'HH:mm:ssXXX`` for
    an offset, ``... VV`` for a zone name) or as seconds / milliseconds since the epoch; a number with a decimal
    comma and / or a thousands separator (``1.234,5``)."""

    pattern: str | None = None  # a Spark datetime pattern, or one of EPOCH_UNITS
    decimal: str = "."
    thousands: str | None = None

    def number_text(self, text: Column) -> Column:
        """Text of a number rewritten as Spark reads it (no thousands separator, a decimal point)."""
        if self.thousands:
            text = F.replace(text, F.lit(self.thousands), F.lit(""))
        if self.decimal != ".":
            text = F.replace(text, F.lit(self.decimal), F.lit("."))
        return text

    def time_value(self, text: Column, sql_type: str) -> Column:
        """The date / timestamp the text denotes, or null when it does not fit the pattern."""
        if self.pattern in EPOCH_UNITS:
            seconds = text.try_cast("decimal(38,6)") / EPOCH_UNITS[self.pattern]
            value = F.timestamp_micros((seconds * 1_000_000).try_cast("bigint"))  # an instant (UTC)
        else:
            value = F.try_to_timestamp(text, F.lit(self.pattern))  # an instant, offsets and zones applied
        return value.try_cast(sql_type)  # date / wall clock in the session's time zone (UTC in every job)


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    sql_type: str  # a Spark SQL type: "double", "int", "timestamp_ntz", "decimal(10,2)" ...
    aliases: tuple[str, ...] = ()  # other spellings in files (matched case-insensitively, as is the name)
    written: WrittenAs = WrittenAs()  # how text files write its values

    def matches(self, file_column: str) -> bool:
        return file_column.lower() in {self.name.lower(), *(a.lower() for a in self.aliases)}


@dataclass(frozen=True)
class TextFormat:
    """How text files are laid out (CSV); JSON and Parquet carry their own names."""

    header: bool = True
    delimiter: str = ","
    null_values: tuple[str, ...] = ("",)  # text meaning "missing", compared after trimming
    multiline: bool = False  # JSON: a file holds one array of objects, or objects spread over several lines


@dataclass
class FilePart:
    """Input files read alike (one header or one footer schema): the frame, the files' own column names."""

    frame: DataFrame
    columns: list[str]  # the files' own column names
    files: list
    raw_text: bool  # values are text as written (CSV / JSON), not typed by the file (Parquet)
    fields: list[str] = field(default_factory=list)  # the frame's name for each of ``columns`` (default: same)

    def field_of(self, index: int) -> str:
        return self.fields[index] if self.fields else self.columns[index]

    @property
    def where(self) -> str:
        first = self.files[0][0]
        return first if len(self.files) == 1 else f"{first} (and {len(self.files) - 1} more file(s) like it)"


@dataclass
class InputRead:
    parts: list[FilePart]
    empty_files: list = field(default_factory=list)  # no header line: no rows


def read_parts(spark: SparkSession, files: list, input_format: str, declared: list[DeclaredColumn],
               text: TextFormat = TextFormat()) -> InputRead:
    """The input files as Spark reads them, one part per layout. Raises ``UnreadableFile`` for a file whose
    header or footer cannot be read."""
    if input_format == "csv":
        return _csv_parts(spark, files, declared, text)
    if input_format == "parquet":
        parts = [FilePart(frame := spark.read.parquet(*[f[0] for f in group]), frame.columns, group, False)
                 for group in parquet_footers(spark, files).values()]
        return InputRead(parts)
    if input_format == "orc":  # typed by the file, as Parquet; ORC files of one input share one schema
        frame = spark.read.orc(*[f[0] for f in files])
        return InputRead([FilePart(frame, frame.columns, files, False)])
    if input_format == "json":
        schema = T.StructType([T.StructField(c.name, T.StringType(), True) for c in declared]
                              + [T.StructField(CORRUPT, T.StringType(), True)])
        frame = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
                 .option("multiLine", text.multiline).json([f[0] for f in files]))
        return InputRead([FilePart(frame, [c.name for c in declared], files, True)])
    raise DataError(f"{files[0][0]}: unsupported input format {input_format!r} (csv, json, parquet or orc)")


def _csv_parts(spark: SparkSession, files: list, declared: list[DeclaredColumn], text: TextFormat) -> InputRead:
    # Column pruning would parse only the selected fields, and a short or long line would then pass unnoticed.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    if text.header:
        groups, empty = csv_headers(spark, files, text.delimiter)
    else:
        groups, empty = {tuple(c.name for c in declared): files}, []
    parts = []
    for header, group in groups.items():
        names = list(header)
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise DataError(f"{group[0][0]}: the header names column(s) {', '.join(duplicated)} more than once")
        # Positional names: a header may hold any text (spaces, dots, backticks); the mapping keeps the real ones.
        schema = T.StructType([T.StructField(f"_c{i}", T.StringType(), True) for i in range(len(names))]
                              + [T.StructField(CORRUPT, T.StringType(), True)])
        frame = (spark.read.schema(schema).option("header", text.header).option("sep", text.delimiter)
                 .option("enforceSchema", True).option("mode", "PERMISSIVE")
                 .option("columnNameOfCorruptRecord", CORRUPT).csv([f[0] for f in group]))
        parts.append(FilePart(frame, names, group, True, [f"_c{i}" for i in range(len(names))]))
    return InputRead(parts, empty)


def typed_value(raw: Column, sql_type: str, from_text: bool, null_values: tuple[str, ...],
                written: WrittenAs = WrittenAs(), file_type: str | None = None) -> tuple[Column, Column]:
    """(raw text or null, value of the declared type or null). From a typed file (Parquet) the raw text is kept
    only for a value that does not fit: the others are in the typed columns as they were. ``file_type``: the
    typed file's own type of the column."""
    if from_text and null_values:
        raw = F.when(~F.trim(raw).isin(*null_values), raw)
    source = F.trim(raw) if from_text and sql_type != "string" else raw
    if from_text and sql_type in TIME and written.pattern:
        return raw, written.time_value(source, sql_type)
    if from_text and (written.thousands or written.decimal != "."):
        source = written.number_text(source)
    if sql_type in INTEGRAL and file_type in INTEGRAL:  # only the range can fail (no 38-digit decimal per value)
        value = source.try_cast(sql_type)
    elif sql_type in INTEGRAL:  # "1.0" (as some years' files write counts) is 1; "1.5" does not fit
        exact = source.try_cast(WIDE_DECIMAL)
        value = F.when(exact == F.floor(exact), exact.try_cast(sql_type))
    else:
        value = source if sql_type == "string" and from_text else source.try_cast(sql_type)
    if sql_type in FRACTIONAL:  # NaN and infinities are not measurements: a bad value, like text
        value = F.when(~F.isnan(value) & (F.abs(value) != float("inf")), value)
    if not from_text:  # a typed file's raw text is needed only where the value did not fit: cast only there
        raw = F.when(raw.isNotNull() & value.isNull(), raw.cast("string"))
    return raw, value


def fields_of(part: FilePart, declared: list[DeclaredColumn]) -> dict[str, str]:
    """Declared column -> the frame column holding it (the first file column spelling it)."""
    by_name: dict[str, str] = {}
    for index, file_column in enumerate(part.columns):
        for column in declared:
            if column.matches(file_column) and column.name not in by_name:
                by_name[column.name] = part.field_of(index)
    return by_name


def declared_rows(part: FilePart, declared: list[DeclaredColumn], required: list[str],
                  text: TextFormat = TextFormat()) -> DataFrame:
    """The part's rows as the declared columns (typed), ``__raw_<column>`` (as written), ``raw_line`` (a line
    that could not be split) and ``source_file``. A required column the files lack is a DataError naming them."""
    by_name = fields_of(part, declared)
    missing = [name for name in required if name not in by_name]
    if missing:
        raise DataError(f"{part.where}: missing required column(s) {', '.join(missing)} "
                        f"(the file has: {', '.join(part.columns) or 'no columns'})")
    selected = []
    for column in declared:
        if column.name in by_name:
            file_type = None if part.raw_text else part.frame.schema[by_name[column.name]].dataType.simpleString()
            raw, value = typed_value(F.col(f"`{by_name[column.name]}`"), column.sql_type, part.raw_text,
                                     text.null_values, column.written, file_type)
        else:
            raw, value = F.lit(None).cast("string"), F.lit(None).cast(column.sql_type)
        selected += [value.alias(column.name), raw.alias(RAW_PREFIX + column.name)]
    corrupt = F.col(CORRUPT) if CORRUPT in part.frame.columns else F.lit(None).cast("string")
    return part.frame.select(*selected, corrupt.alias(RAW_LINE), F.input_file_name().alias(SOURCE_FILE))


def union_parts(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(DataFrame.unionByName, frames)


def bad_value(column: str) -> Column:
    """The file held a value for ``column`` that does not fit its declared type."""
    return F.col(RAW_PREFIX + column).isNotNull() & F.col(column).isNull()
