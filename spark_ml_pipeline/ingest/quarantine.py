"""Validation with a quarantine: every input row lands in ``valid`` or in ``quarantine`` with a ``reason``.

A pipeline supplies its rules as (reason, row-is-bad condition) pairs; a row is quarantined for the first rule
it breaks, and keeps what it was read from (``raw_line``: the line, or the row's raw values as JSON). :func:`commit`
writes both sets and ``_ingest.json`` atomically, in one pass over the input: the counts (rows in, valid, bad
values per column) are observed while the rows are written, then checked against the row counts in the written
files' footers before anything is published; the count per reason is read from the written quarantine. Nothing
is lost, nothing half-written is visible, and rerunning a date replaces its output whole. An input file that
cannot be read fails the run, naming the file, or with ``on_unreadable_file="quarantine"`` is skipped and listed
in the statistics with its reason.
"""
from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Sequence, TypeVar

from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.files import UnreadableFile, java_reason, parquet_row_count, unreadable_file_of
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join
from spark_ml_pipeline.runtime.session import session_settings, unsorted_partitioned_write

VALID, QUARANTINE, STATS = "valid", "quarantine", "_ingest.json"
REASON, RAW_LINE, SOURCE_FILE = "reason", "raw_line", "source_file"
RAW_PREFIX = "__raw_"  # a declared column's value as written in the file (see ingest.tables)
QUARANTINE_ONLY_COLUMNS = (REASON, RAW_LINE)
MALFORMED, DUPLICATE = "malformed_line", "duplicate_row"
ON_UNREADABLE_FILE = ("fail", "quarantine")

Rule = tuple[str, Column]  # (reason, condition that is true for a bad row)
Result = TypeVar("Result")


@dataclass
class IngestStats:
    input: str
    schema: str  # which declared schema the input was read with (e.g. the TLC generation)
    input_format: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    input_files: list[tuple[str, int, int]] = field(default_factory=list)  # the files read (uri, size, mtime)
    skipped_files: list[dict] = field(default_factory=list)  # unreadable files left out: {file, reason}
    bad_values: dict[str, int] = field(default_factory=dict)  # values that did not fit their column's type
    all_null_columns: list[str] = field(default_factory=list)  # declared columns null in every valid row


@dataclass
class Tagged:
    """What a pipeline's reader gives :func:`commit`: the tagged rows (declared columns, ``__raw_<column>``,
    ``raw_line``, ``source_file``, ``reason``), the schema they were read with, and every reason a row can get."""

    rows: DataFrame
    schema: str
    reasons: list[str]
    columns_found: list[str] = field(default_factory=list)  # declared columns some input file holds


def no_advice(reason: str) -> str:
    return ""


@dataclass(frozen=True)
class IngestInput:
    """One input as a pipeline's ingest reads it: where it is, its files, how they are read and tagged (the
    ``build`` :func:`commit` is given), and what the ingest then requires of the tagged rows. The ingest commits
    it; the ingest check (:mod:`spark_ml_pipeline.ingest.check`) reads a sample of it the same way."""

    key: str  # the configuration key naming the input (input.uri, ingest.input), as messages name it
    source: str
    files: list
    tagged: Callable[[list], Tagged]
    input_format: str
    on_unreadable_file: str = "fail"
    max_quarantine_fraction: float = 1.0
    advice: Callable[[str], str] = no_advice  # what to check or set when most rows are quarantined for a reason


def reasons_of(rules: Sequence[Rule]) -> list[str]:
    return [name for name, _ in rules]


def tag_rows(df: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """``reason``: the first rule the row breaks, null for a valid row."""
    return df.withColumn(REASON, F.coalesce(*[F.when(bad, F.lit(name)) for name, bad in rules], F.lit(None)))


def tag(rows: DataFrame, rules: Sequence[Rule], *, schema: str, duplicates: str, key_columns: Sequence[str],
        columns_found: Sequence[str] = ()) -> Tagged:
    """The rows tagged by ``rules`` (and, with ``duplicates="quarantine"``, copies of a valid row on
    ``key_columns``), with every reason they can get: what a pipeline's reader gives :func:`commit`."""
    tagged = tag_rows(rows, rules)
    reasons = reasons_of(rules)
    if duplicates == "quarantine":
        tagged, reasons = quarantine_duplicates(tagged, key_columns), reasons + [DUPLICATE]
    return Tagged(tagged, schema, reasons, list(columns_found))


def quarantine_duplicates(tagged: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Every valid row equal to an earlier valid one on ``columns`` is quarantined as ``duplicate_row`` (the
    first copy stays valid). Costs a shuffle of the input, hence a choice (``ingest.duplicates``)."""
    copy = F.row_number().over(Window.partitionBy(*columns, F.col(REASON).isNull()).orderBy(SOURCE_FILE))
    return tagged.withColumn(REASON, F.coalesce(F.col(REASON), F.when(copy > 1, F.lit(DUPLICATE))))


def with_raw_line(tagged: DataFrame) -> DataFrame:
    """A quarantined row keeps what it was read from in ``raw_line``: the line when Spark could not split it,
    else its raw values as JSON; the ``__raw_<column>`` columns are dropped."""
    raw = [c for c in tagged.columns if c.startswith(RAW_PREFIX)]
    raw_values = F.to_json(F.struct(*[F.col(c).alias(c[len(RAW_PREFIX):]) for c in raw]))
    return tagged.withColumn(RAW_LINE, F.when(F.col(REASON).isNotNull(), F.coalesce(F.col(RAW_LINE), raw_values))
                             ).drop(*raw)


def commit(spark: SparkSession, build: Callable[[list], Tagged], files: list, output: str, *, source: str,
           input_format: str, on_unreadable_file: str = "fail") -> IngestStats:
    """Write ``output/valid`` + ``output/quarantine`` + stats in one atomic commit, every row accounted for;
    ``build(files)`` reads and tags those files (called again without a file found unreadable, if so asked)."""
    return over_readable_files(files, source, on_unreadable_file, lambda readable, skipped: _write(
        spark, build(readable), output, source=source, input_format=input_format, files=readable, skipped=skipped))


def over_readable_files(files: list, source: str, on_unreadable_file: str,
                        attempt: Callable[[list, list], Result]) -> Result:
    """``attempt(readable, skipped)`` on the input files. A file found unreadable fails the run, named, or with
    ``on_unreadable_file="quarantine"`` is left out, listed in ``skipped`` ({file, reason}), and the attempt made
    again without it."""
    if on_unreadable_file not in ON_UNREADABLE_FILE:
        raise ValueError(f"on_unreadable_file={on_unreadable_file!r}: one of {ON_UNREADABLE_FILE}")
    readable, skipped = list(files), []
    while True:
        if not readable:
            raise DataError(f"{source}: none of the {len(files)} input file(s) is readable "
                            f"({skipped[0]['file']}: {skipped[0]['reason']} ...)")
        try:
            return attempt(readable, skipped)
        except Exception as exc:
            unreadable = exc if isinstance(exc, UnreadableFile) else unreadable_file_of(exc, readable)
            if unreadable is None:
                raise
            if on_unreadable_file == "fail":
                raise DataError(f"{unreadable}; set ingest.on_unreadable_file=quarantine to skip such files "
                                "(they are listed in the ingest statistics)") from None
            skipped.append({"file": unreadable.file, "reason": unreadable.reason})
            readable = [f for f in readable if f[0] != unreadable.file]


def observe_counts(tagged: DataFrame, declared: Sequence[str]) -> tuple[DataFrame, Observation]:
    """The tagged rows, counting as they pass: rows in, valid, values that did not fit their declared column
    (``bad_<i>``) and nulls in valid rows (``null_<i>``), read after an action. Spark evaluates an observation's
    aggregates row by row outside its generated code, at a cost per aggregate; so they are sums of 0/1 (cheaper
    than ``count_if``), and the count per reason is taken from the quarantine once written (:func:`_by_reason`)."""
    valid = F.col(REASON).isNull()

    def count(condition: Column) -> Column:
        return F.sum(condition.cast("int"))

    observation = Observation(f"ingest_{uuid.uuid4().hex}")
    counted = tagged.observe(
        observation, F.count(F.lit(1)).alias("rows_in"), count(valid).alias("rows_valid"),
        *[count(F.col(RAW_PREFIX + c).isNotNull() & F.col(c).isNull()).alias(f"bad_{i}")
          for i, c in enumerate(declared)],
        *[count(valid & F.col(c).isNull()).alias(f"null_{i}") for i, c in enumerate(declared)])
    return counted, observation


def _by_reason(spark: SparkSession, quarantine: str, quarantined: int) -> dict[str, int]:
    """Quarantined rows per reason, read from the written quarantine (its ``reason`` column only); no Spark job
    when nothing was quarantined."""
    if not quarantined:
        return {}
    counts = spark.read.parquet(quarantine).groupBy(REASON).count().collect()
    return {row[REASON]: int(row["count"]) for row in counts}


def _write(spark: SparkSession, tagged_input: Tagged, output: str, *, source: str, input_format: str,
           files: list, skipped: list) -> IngestStats:
    fs = HadoopFS(spark)
    tagged, schema = tagged_input.rows, tagged_input.schema
    declared = [c[len(RAW_PREFIX):] for c in tagged.columns if c.startswith(RAW_PREFIX)]
    held = set(tagged_input.columns_found or declared)  # a column no file has is null by design, not news
    counted, observation = observe_counts(tagged, declared)
    rows = with_raw_line(counted)
    # The write splits rows into status=valid / status=quarantine: two open writers, no sort.
    with atomic_output(spark, output) as temporary, session_settings(spark, unsorted_partitioned_write(2)):
        status = F.when(F.col(REASON).isNull(), F.lit(VALID)).otherwise(F.lit(QUARANTINE))
        rows.withColumn("status", status).write.partitionBy("status").parquet(join(temporary, "_tagged"))
        for name in (VALID, QUARANTINE):
            tagged_dir = join(temporary, "_tagged", f"status={name}")
            if not fs.exists(tagged_dir):  # no row of that kind: still publish an empty dataset
                spark.createDataFrame([], rows.schema).write.parquet(tagged_dir)
            fs.rename(tagged_dir, join(temporary, name))
        fs.delete(join(temporary, "_tagged"))
        seen = {k: int(v or 0) for k, v in observation.get.items()}
        rows_in, rows_valid = seen["rows_in"], seen["rows_valid"]
        quarantined = rows_in - rows_valid
        written = (parquet_row_count(spark, join(temporary, VALID)),
                   parquet_row_count(spark, join(temporary, QUARANTINE)))
        if written != (rows_valid, quarantined):
            raise DataError(f"{source}: read {rows_in} rows ({rows_valid} valid) but wrote {written[0]} valid + "
                            f"{written[1]} quarantined; refusing to commit")
        by_reason = _by_reason(spark, join(temporary, QUARANTINE), quarantined)
        stats = IngestStats(input=source, schema=schema, input_format=input_format, rows_in=rows_in,
                            rows_valid=rows_valid, rows_quarantined=quarantined,
                            quarantined_by_reason=dict(sorted(by_reason.items())), input_files=files,
                            skipped_files=skipped,
                            bad_values={c: seen[f"bad_{i}"] for i, c in enumerate(declared) if seen[f"bad_{i}"]},
                            all_null_columns=[c for i, c in enumerate(declared)
                                              if c in held and rows_valid and seen[f"null_{i}"] == rows_valid])
        fs.write_text(join(temporary, STATS), json.dumps(asdict(stats), indent=2))
    return stats


def read_valid(spark: SparkSession, output: str) -> DataFrame:
    """The valid rows, without the quarantine-only columns."""
    return spark.read.parquet(join(output, VALID)).drop(*QUARANTINE_ONLY_COLUMNS)


def read_quarantine(spark: SparkSession, output: str) -> DataFrame:
    return spark.read.parquet(join(output, QUARANTINE))


def read_stats(spark: SparkSession, output: str) -> IngestStats:
    location = join(output, STATS)
    try:
        text = HadoopFS(spark).read_text(location)
    except Exception as exc:  # py4j: e.g. Hadoop's checksum finding the file changed behind its back
        raise DataError(f"{location}: not readable ({java_reason(exc)}); rerun the ingest stage") from None
    try:
        data = json.loads(text)
        data["input_files"] = [tuple(f) for f in data["input_files"]]
        return IngestStats(**data)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{location}: not readable ingest statistics ({exc}); rerun the ingest stage") from None


# A reason shown when the quarantine is too large: at least this share of the quarantined rows (or the top one).
LEADING_REASON_SHARE = 0.1
EXAMPLES = 3


def bad_value_column(reason: str) -> str | None:
    """The column a ``bad_value:<column>`` reason names (its raw values are the examples to show)."""
    return reason.split(":", 1)[1] if reason.startswith("bad_value:") else None


def value_as_read(reason: str) -> Column:
    """What a row quarantined for ``reason`` was read as (``raw_line`` set, :func:`with_raw_line`): the column's
    raw value of a ``bad_value:<column>``, else the raw line (the line, or the row's raw values as JSON)."""
    column = bad_value_column(reason)
    return F.get_json_object(F.col(RAW_LINE), f"$['{column}']") if column else F.col(RAW_LINE)


def quarantine_examples(spark: SparkSession, output: str, reason: str, limit: int = EXAMPLES) -> list[str]:
    """Up to ``limit`` distinct values as read (:func:`value_as_read`) of the rows quarantined for ``reason``."""
    rows = (read_quarantine(spark, output).where(F.col(REASON) == reason).select(value_as_read(reason).alias("raw"))
            .where(F.col("raw").isNotNull()).limit(50 * limit).distinct().limit(limit).collect())
    return [row["raw"] for row in rows]


def leading_reasons(stats: IngestStats) -> list[tuple[str, int]]:
    by_count = sorted(stats.quarantined_by_reason.items(), key=lambda item: -item[1])
    return [(reason, n) for i, (reason, n) in enumerate(by_count)
            if i == 0 or n >= LEADING_REASON_SHARE * stats.rows_quarantined][:EXAMPLES]


def shown(value: str, width: int = 60) -> str:
    return repr(value if len(value) <= width else value[:width] + "…")


def require_mostly_valid(spark: SparkSession, output: str, stats: IngestStats, max_fraction: float,
                         explain: Callable[[str], str] = no_advice) -> None:
    """A :class:`DataError` when more than ``max_fraction`` of the rows read were quarantined: the data does not
    fit its declaration, and training on the rest would only fail later for a reason that hides the cause. One
    line per leading reason: its share of the rows, up to three values as read, and ``explain(reason)`` (what to
    set). The committed rows, quarantine and statistics stay (nothing is lost)."""
    if not too_much_quarantined(stats.rows_in, stats.rows_quarantined, max_fraction):
        return
    lines = [f"{stats.input}: {too_much(stats.rows_in, stats.rows_quarantined, max_fraction)} "
             f"(quarantine and statistics in {output}):"]
    for reason, n in leading_reasons(stats):
        lines.append(reason_line(reason, f"{n / stats.rows_in:.0%}", quarantine_examples(spark, output, reason),
                                 explain(reason)))
    raise DataError("\n".join(lines))


def too_much_quarantined(rows_in: int, rows_quarantined: int, max_fraction: float) -> bool:
    """More than ``max_fraction`` of the rows read were quarantined (``ingest.max_quarantine_fraction``)."""
    return bool(rows_in) and rows_quarantined > max_fraction * rows_in


def too_much(rows_in: int, rows_quarantined: int, max_fraction: float) -> str:
    """The words for :func:`too_much_quarantined`: the share and the key it exceeds."""
    return (f"{rows_quarantined:,} of {rows_in:,} rows ({rows_quarantined / rows_in:.0%}) were quarantined, more "
            f"than ingest.max_quarantine_fraction ({max_fraction:g}); the data does not fit its declaration")


def reason_line(reason: str, figures: str, examples: Sequence[str], advice: str, width: int = 0) -> str:
    """One line about a quarantine reason: its figures, up to three values as read, and what to check or set
    (``width``: the reason padded, to align several lines)."""
    shown_examples = ", ".join(shown(value) for value in examples)
    return (f"  {reason:<{width}} {figures} — {shown_examples or 'no value read'}"
            + (f"; {advice}" if advice else ""))


def ingest_figures(stats: IngestStats) -> str:
    """What an error after ingest cites: rows read and quarantined, with the leading reasons."""
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in leading_reasons(stats))
    return (f"ingest read {stats.rows_in:,} rows, quarantined {stats.rows_quarantined:,}"
            + (f" ({reasons})" if reasons else "") + f", left {stats.rows_valid:,} valid")


@contextlib.contextmanager
def citing(stats: IngestStats) -> Iterator[None]:
    """A data error raised inside (an empty split, a time column without values, a class missing from the
    training rows) names the ingest figures behind it: the cause is often what ingest quarantined."""
    try:
        yield
    except DataError as exc:
        raise DataError(f"{exc} ({ingest_figures(stats)})") from None


def require_ingested(spark: SparkSession, output: str, what: str) -> None:
    if not HadoopFS(spark).exists(join(output, STATS)):
        raise DataError(f"{output}: no ingested data for {what}; run the ingest stage first")
