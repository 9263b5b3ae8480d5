"""What the columns of an unknown input hold: a seeded sample read as text, each column's type inferred.

A column's type is the narrowest the ingest itself can read every sampled value as: candidates come from the
text's shape (``2012/01/31`` is a date written ``yyyy/MM/dd``, ``1.234,5`` a number with a decimal comma) and a
candidate is kept only if the ingest's own cast (:func:`~spark_ml_pipeline.ingest.tables.typed_value`) reads
every sampled value with it, so a drafted schema quarantines nothing the sample holds. Each column also gets the
figures a proposal needs: present and distinct counts, quantiles, examples.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.tables import WrittenAs, typed_value
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS

TEXT_FORMATS = ("csv", "json")
FORMATS = ("csv", "json", "parquet", "orc")
COMPRESSED = (".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zip")  # .zip: one file, extracted by the ingest
# Text that tools write for "missing"; a sample's null values are those of these it holds (and the empty text).
NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "?")
DELIMITERS = (",", ";", "\t", "|")
QUANTILES = (0.005, 0.01, 0.02, 0.25, 0.5, 0.75, 0.99, 0.995)

INTEGER = re.compile(r"^[+-]?\d+$")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
BOOLEAN = {"true", "false"}
# Numbers with separators: 1,234.5 (thousands ','), 1.234,5 / 3,14 (decimal ','), 1 234,5 (thousands ' ').
THOUSANDS_COMMA = re.compile(r"^[+-]?\d{1,3}(,\d{3})*(\.\d+)?$")
DECIMAL_COMMA = re.compile(r"^[+-]?\d{1,3}(\.\d{3})*(,\d+)?$|^[+-]?\d+(,\d+)?$")
THOUSANDS_SPACE = re.compile(r"^[+-]?\d{1,3}( \d{3})*(,\d+)?$")

_DATE = r"\d{1,2}[/.-]\d{1,2}[/.-]\d{4}"
_CLOCK = r"\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_TIMESTAMP = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}[ T]{_CLOCK}(Z|[+-]\d{{2}}(:?\d{{2}})?)?$")
ZONED_TIMESTAMP = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}[ T]{_CLOCK} [A-Za-z_]+(/[A-Za-z_+-]+)+$")
YEAR_FIRST = re.compile(rf"^\d{{4}}([/.])\d{{1,2}}\1\d{{1,2}}( {_CLOCK})?$")
DAY_OR_MONTH_FIRST = re.compile(rf"^({_DATE})( {_CLOCK}( ?[AaPp][Mm])?)?$")
# Integers counting seconds / milliseconds since 1970 (2001-09-09 .. 2096-10-02), in a column named like a time.
EPOCH_RANGES = {"epoch_seconds": (1e9, 4e9), "epoch_millis": (1e12, 4e12)}
TIME_NAME = re.compile(r"(time|date|epoch|timestamp|_ts$|_at$)", re.IGNORECASE)

SPARK_TYPES = {T.ByteType: "tinyint", T.ShortType: "smallint", T.IntegerType: "int", T.LongType: "bigint",
               T.FloatType: "float", T.DoubleType: "double", T.StringType: "string", T.BooleanType: "boolean",
               T.DateType: "date", T.TimestampType: "timestamp", T.TimestampNTZType: "timestamp_ntz"}


@dataclass(frozen=True)
class TextLayout:
    """How a text input is laid out, as sniffed from its first lines."""

    header: bool = True
    delimiter: str = ","
    multiline: bool = False  # JSON: one array of objects, or objects spread over several lines


@dataclass
class Sample:
    """A seeded sample of an input: its rows as text (CSV / JSON) or as stored (Parquet / ORC)."""

    frame: DataFrame
    input_format: str
    layout: TextLayout
    files: list
    rows_estimated: int  # rows in the whole input (counted for Parquet / ORC, from file sizes for text)
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it cannot be declared (nested ...)

    @property
    def from_text(self) -> bool:
        return self.input_format in TEXT_FORMATS


@dataclass
class ColumnProfile:
    """What one column of a sample holds, read as its inferred type."""

    name: str
    sql_type: str
    written: WrittenAs = WrittenAs()
    why: str = ""  # how the type was recognised, for the drafted conf's comment
    present: int = 0  # sampled rows with a value
    distinct: int = 0
    examples: tuple = ()  # up to three distinct values as written
    quantiles: dict[float, float] = field(default_factory=dict)  # numeric columns
    minimum: object = None
    maximum: object = None
    values: pd.Series | None = field(default=None, repr=False)  # the typed sampled values (for correlations)


def input_format_of(uri: str) -> str | None:
    """csv / json / parquet / orc from a file name (compression suffixes ignored), else None."""
    name = uri.lower().rstrip("/")
    for suffix in COMPRESSED:
        name = name.removesuffix(suffix)
    for fmt, suffixes in {"csv": (".csv", ".tsv", ".txt"), "json": (".json", ".jsonl", ".ndjson"),
                          "parquet": (".parquet", ".pq"), "orc": (".orc",)}.items():
        if name.endswith(suffixes):
            return fmt
    return None


# --- reading a sample ----------------------------------------------------------------------------------

def sniff_layout(lines: list[str], first_file: str, input_format: str) -> TextLayout:
    """Delimiter and header of a CSV file, or whether a JSON file is one array / pretty-printed, from its first
    non-blank ``lines``."""
    if not lines:
        raise DataError(f"{first_file}: empty file: nothing to infer a schema from")
    if input_format == "json":
        start = lines[0].strip()
        return TextLayout(multiline=start.startswith("[") or start == "{")
    counts = {d: [line.count(d) for line in lines[:10]] for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: (min(counts[d]) > 0, min(counts[d]), -DELIMITERS.index(d)))
    first = next(csv.reader([lines[0]], delimiter=delimiter))
    # A header line names columns: no field of it reads as a number (data lines usually have some).
    header = not any(NUMBER.match(value.strip()) for value in first)
    return TextLayout(header=header, delimiter=delimiter)


def read_sample(spark: SparkSession, uri: str, input_format: str, rows: int, seed: int = 7,
                layout: TextLayout | None = None) -> Sample:
    """About ``rows`` rows drawn evenly (seeded) from every file of ``uri``; text formats are read as text."""
    files = list_input_files(spark, uri)
    paths = [f[0] for f in files]
    if input_format in TEXT_FORMATS:
        # The first file's head, read once: the layout, and the bytes per line that size the input.
        head = [line for line in HadoopFS(spark).first_lines(paths[0], 200) if line.strip()]
        layout = layout or sniff_layout(head, paths[0], input_format)
        if input_format == "csv":
            frame = (spark.read.option("header", layout.header).option("sep", layout.delimiter)
                     .option("inferSchema", False).option("mode", "DROPMALFORMED").csv(paths))
            if not layout.header:
                frame = frame.toDF(*[f"column_{i + 1}" for i in range(len(frame.columns))])
        else:
            frame = (spark.read.option("primitivesAsString", True).option("multiLine", layout.multiline)
                     .option("mode", "DROPMALFORMED").json(paths))
        line_bytes = max(1.0, sum(len(line) + 1 for line in head) / max(1, len(head)))
        estimated = int(sum(f[1] for f in files) / line_bytes)
    else:
        frame = spark.read.parquet(*paths) if input_format == "parquet" else spark.read.orc(*paths)
        estimated = frame.count()  # from the files' footers
        layout = TextLayout()
    skipped = {f.name: f"{f.dataType.simpleString()} values (nested or binary) are not a column the ingest declares"
               for f in frame.schema.fields if _sql_type(f.dataType) is None}
    frame = frame.drop(*skipped)
    if not frame.columns:
        raise DataError(f"{uri}: no columns could be read (is input.format {input_format} right?)")
    fraction = rows / estimated if estimated else 1.0
    if fraction < 1.0:
        frame = frame.sample(withReplacement=False, fraction=min(1.0, 1.2 * fraction), seed=seed)
    return Sample(frame.limit(rows), input_format, layout, files, estimated, skipped)


def _sql_type(data_type: T.DataType) -> str | None:
    if isinstance(data_type, T.DecimalType):
        return data_type.simpleString()
    return SPARK_TYPES.get(type(data_type))


# --- inferring types -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    sql_type: str
    written: WrittenAs = WrittenAs()
    why: str = ""


def candidates(name: str, values: list[str]) -> list[Candidate]:
    """Types the shape of a column's (non-missing, trimmed) text values suggests, narrowest first; each is then
    checked with the ingest's own cast."""
    if not values:
        return []
    distinct = set(values)
    if {v.lower() for v in distinct} <= BOOLEAN:
        return [Candidate("boolean", why="true / false")]
    if all(INTEGER.match(v) for v in distinct):
        if any(len(v.lstrip("+-")) > 1 and v.lstrip("+-").startswith("0") for v in distinct):
            return []  # leading zeros: a code (zip, id) whose zeros matter, kept as text
        numbers = [int(v) for v in distinct]
        epoch = _epoch(name, numbers)
        integral = "int" if all(-2**31 <= n < 2**31 for n in numbers) else "bigint"
        return ([epoch] if epoch else []) + [Candidate(integral, why="whole numbers")]
    if all(NUMBER.match(v) for v in distinct):
        return [Candidate("double", why="numbers")]
    found = _separated_number(distinct)
    if found:
        return [found]
    return _time_candidates(distinct)


def _epoch(name: str, numbers: list[int]) -> Candidate | None:
    if not TIME_NAME.search(name):
        return None
    for unit, (low, high) in EPOCH_RANGES.items():
        if all(low <= n < high for n in numbers):
            return Candidate("timestamp", WrittenAs(unit), why=f"whole numbers of {unit.split('_')[1]} since 1970 "
                                                               "in a column named like a time")
    return None


def _separated_number(distinct: set[str]) -> Candidate | None:
    with_comma = [v for v in distinct if "," in v]
    if with_comma and all(THOUSANDS_COMMA.match(v) for v in distinct) and (
            any("." in v for v in distinct) or any(v.count(",") > 1 for v in with_comma)):
        return Candidate("double", WrittenAs(thousands=","), why="numbers written 1,234.5 (thousands ',')")
    if with_comma and all(DECIMAL_COMMA.match(v) for v in distinct):
        thousands = "." if any(re.search(r"\.\d{3}", v) for v in distinct) else None
        return Candidate("double", WrittenAs(decimal=",", thousands=thousands),
                         why="numbers written with a decimal comma" + (" and '.' thousands" if thousands else ""))
    if any(" " in v for v in distinct) and all(THOUSANDS_SPACE.match(v) for v in distinct):
        return Candidate("double", WrittenAs(decimal=",", thousands=" "),
                         why="numbers written 1 234,5 (thousands ' ', decimal comma)")
    return None


def _time_candidates(distinct: set[str]) -> list[Candidate]:
    if all(ISO_DATE.match(v) for v in distinct):
        return [Candidate("date", why="dates written yyyy-MM-dd")]
    if all(ISO_TIMESTAMP.match(v) for v in distinct):
        zoned = any(re.search(r"(Z|[+-]\d{2}(:?\d{2})?)$", v) for v in distinct)
        found = [Candidate("timestamp", why="timestamps written yyyy-MM-dd HH:mm:ss"
                                            + (" with an offset, kept as UTC" if zoned else ""))]
        if zoned:
            found += [Candidate("timestamp", WrittenAs(p), why=f"timestamps with an offset, written {p}")
                      for p in ("yyyy-MM-dd'T'HH:mm:ssXXX", "yyyy-MM-dd HH:mm:ssXXX", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")]
        return found
    if all(ZONED_TIMESTAMP.match(v) for v in distinct):
        return [Candidate("timestamp", WrittenAs(p), why=f"timestamps with a zone name, written {p}")
                for p in ("yyyy-MM-dd HH:mm:ss VV", "yyyy-MM-dd'T'HH:mm:ss VV", "yyyy-MM-dd HH:mm VV")]
    matches = [YEAR_FIRST.match(v) for v in distinct]
    if all(matches):
        separator = matches[0].group(1)
        if len({m.group(1) for m in matches}) == 1:
            return _patterns(distinct, f"yyyy{separator}MM{separator}dd", f"yyyy{separator}M{separator}d")
        return []
    if all(DAY_OR_MONTH_FIRST.match(v) for v in distinct):
        separator = re.search(r"[/.-]", next(iter(distinct))).group(0)
        firsts = [int(re.split(r"[/.-]", v)[0]) for v in distinct]
        seconds = [int(re.split(r"[/.-]", v)[1]) for v in distinct]
        day_first = separator == "." or max(firsts) > 12
        orders = (["dd", "MM"], ["d", "M"]) if day_first else (["MM", "dd"], ["M", "d"])
        found = []
        for first, second in orders:
            found += _patterns(distinct, f"{first}{separator}{second}{separator}yyyy")
        if not day_first and max(seconds) <= 12:  # 03/04/2020: both orders read; month first is assumed
            found = [Candidate(c.sql_type, c.written, c.why + " (month first assumed: no day above 12 comes first)")
                     for c in found]
        return found
    return []


def _patterns(distinct: set[str], *dates: str) -> list[Candidate]:
    """Date patterns, and the same followed by each clock layout the values show."""
    clock = [v.split(" ", 1)[1] for v in distinct if " " in v]
    if not clock:
        return [Candidate("date", WrittenAs(p), why=f"dates written {p}") for p in dates]
    layouts = ["HH:mm:ss", "H:mm:ss", "HH:mm", "H:mm", "h:mm:ss a", "h:mm a", "HH:mm:ss.SSS"]
    return [Candidate("timestamp", WrittenAs(f"{d} {c}"), why=f"timestamps written {d} {c}")
            for d in dates for c in layouts]


def profile(sample: Sample) -> tuple[tuple[str, ...], list[ColumnProfile]]:
    """The missing-value spellings the sample holds, and every sampled column's inferred type and figures
    (counts, distinct values, quantiles, examples)."""
    frame = sample.frame.cache()
    try:
        rows = frame.collect()
        null_values = _null_values(rows) if sample.from_text else ("",)
        types = infer_types(sample, rows, null_values)
        typed = []
        for name, chosen in zip(frame.columns, types):
            raw, value = typed_value(F.col(f"`{name}`"), chosen.sql_type, sample.from_text, null_values,
                                     chosen.written)
            typed += [value.alias(name), raw.cast("string").alias(f"__raw_{name}")]
        table = frame.select(*typed).toPandas()
    finally:
        frame.unpersist()
    return null_values, [_profile(table, name, chosen, null_values) for name, chosen in zip(frame.columns, types)]


def _null_values(rows: list) -> tuple[str, ...]:
    tokens = {t for t in NULL_TOKENS if t}
    seen = {value.strip() for row in rows for value in row if isinstance(value, str) and value.strip() in tokens}
    return ("", *[t for t in NULL_TOKENS if t in seen])


def infer_types(sample: Sample, rows: list, null_values: tuple[str, ...]) -> list[Candidate]:
    """Each column's type: the first candidate the ingest's cast reads every sampled value with, else text (or,
    for Parquet / ORC, the type the file stores)."""
    frame = sample.frame
    values: dict[str, set[str]] = {c: set() for c in frame.columns}
    for row in rows:
        for column, value in zip(frame.columns, row):
            if isinstance(value, str) and value.strip() not in null_values:
                values[column].add(value.strip())
    chosen = []
    for f in frame.schema.fields:
        suggested = candidates(f.name, sorted(values[f.name]))
        if sample.from_text:
            chosen.append(suggested + [Candidate("string", why="text")])
        else:  # numbers stored as text in a typed file are declared as numbers (no patterns: values are typed)
            plain = [c for c in suggested if c.written == WrittenAs()] if isinstance(f.dataType, T.StringType) else []
            chosen.append(plain + [Candidate(_sql_type(f.dataType), why="as the file stores it")])
    return _first_that_reads(frame, chosen, sample.from_text, null_values)


def _first_that_reads(frame: DataFrame, chosen: list[list[Candidate]], from_text: bool,
                      null_values: tuple[str, ...]) -> list[Candidate]:
    """For each column the first candidate whose cast leaves no sampled value unread (one Spark job)."""
    checks: list[Column] = []
    for name, options in zip(frame.columns, chosen):
        for option in options:
            raw, value = typed_value(F.col(f"`{name}`"), option.sql_type, from_text, null_values, option.written)
            checks.append(F.sum((raw.isNotNull() & value.isNull()).cast("int")))
    unread = iter(frame.agg(*checks).first())
    result = []
    for options in chosen:
        failures = [next(unread) or 0 for _ in options]
        result.append(next((o for o, n in zip(options, failures) if n == 0), options[-1]))
    return result


def _profile(table: pd.DataFrame, name: str, chosen: Candidate, null_values: tuple[str, ...]) -> ColumnProfile:
    values = table[name]
    present = values.dropna()
    raw = table[f"__raw_{name}"].dropna().astype(str).str.strip()
    examples = tuple(dict.fromkeys(raw[~raw.isin(null_values)]))[:3]
    found = ColumnProfile(name, chosen.sql_type, chosen.written, chosen.why, present=len(present),
                          distinct=int(present.nunique()), examples=examples, values=values)
    if len(present) and chosen.sql_type not in ("string", "boolean"):
        found.minimum, found.maximum = present.min(), present.max()
        if chosen.sql_type not in ("date", "timestamp", "timestamp_ntz"):
            numbers = present.astype(float)
            found.quantiles = {q: float(numbers.quantile(q)) for q in QUANTILES}
    return found


__all__ = ["Candidate", "ColumnProfile", "Sample", "TextLayout", "candidates", "infer_types", "input_format_of",
           "profile", "read_sample", "sniff_layout"]
