"""Reading a tabular data set as declared, and splitting its rows into valid ones and a quarantine.

Files are read as text columns (CSV / JSON) or as stored (Parquet) and then ``try_cast`` to the declared
types, so nothing fails halfway and nothing is silently nulled: a line Spark cannot parse is quarantined as
``malformed_line`` (its raw text kept), a value that does not fit its declared type as ``bad_value:<column>``
(the row's raw values kept as JSON), and the configured rules as ``required:<column>``, ``range:<column>``
and ``allowed:<column>``. Scoring reads with the same code and the same rules, the label being optional.
"""
from __future__ import annotations

import contextlib
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.tabular.config import PACKAGE_SCHEME, TabularConfig, is_numeric
from spark_ml_pipeline.ingest.files import CORRUPT, list_input_files
from spark_ml_pipeline.ingest.packaged import find_package_file
from spark_ml_pipeline.ingest.quarantine import (MALFORMED, RAW_LINE, IngestInput, IngestStats, Tagged, commit,
                                                 require_mostly_valid, tag)
from spark_ml_pipeline.ingest.tables import (DeclaredColumn, FilePart, InputRead, TextFormat, WrittenAs, bad_value,
                                             declared_rows, fields_of, read_parts, union_parts)
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase, run_date
from spark_ml_pipeline.runtime.errors import ConfigError, DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, is_local_uri, join, local_path, short_digest, to_uri


def ingest_location(config: TabularConfig) -> str:
    return config.store.data(config.pipeline, "ingest", f"run_date={run_date(config)}")


def holdout_location(config: TabularConfig) -> str:
    """Where the valid rows and quarantine of ``input.test_uri`` (the fixed holdout) are committed."""
    return config.store.data(config.pipeline, "ingest_test", f"run_date={run_date(config)}")


def schema_ddl(config: TabularConfig) -> str:
    return ", ".join(f"{column} {sql_type}" for column, sql_type in config.columns.items())


def _quoted(column: str) -> Column:
    return F.col(f"`{column}`")


# --- where the files are -----------------------------------------------------------------------------

def resolve_uri(spark: SparkSession, config: PipelineConfigBase, uri: str, key: str = "input.uri",
                scratch: str | None = None) -> str:
    """A readable URI: ``package:<pkg>/<path>`` located in the installed package, a ``.zip`` extracted once (with
    ``scratch``, a local directory, into it when the store holds no extracted copy: the store left untouched)."""
    if uri.startswith(PACKAGE_SCHEME):
        package, _, relative = uri[len(PACKAGE_SCHEME):].partition("/")
        if not package or not relative:
            raise ConfigError(f"{key}: {uri!r} is not of the form package:<package>/<path inside it>")
        found = find_package_file(package, relative)
        if found is None:
            raise ConfigError(f"{key}: {uri}: no {relative} in an installed package {package!r} "
                              f"(pip install {package}?)")
        uri = str(found)
    uri = to_uri(uri)
    if uri.lower().endswith(".zip"):
        return extract_zip(spark, config, uri, key, scratch)
    return uri


def extract_zip(spark: SparkSession, config: PipelineConfigBase, uri: str, key: str = "input.uri",
                scratch: str | None = None) -> str:
    """The single data file of a local ``.zip``, extracted once into the store (keyed by the archive's path,
    size and modification time) and committed atomically: later runs read the extracted copy. With ``scratch``
    (a local directory) and no copy in the store yet, it is extracted there instead."""
    if not is_local_uri(uri):
        raise ConfigError(f"{key}: {uri}: a .zip input must be a local file (unzip it onto the filesystem)")
    path = local_path(uri)
    if not path.is_file():
        raise DataError(f"{key}: {uri}: no such file")
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            raise DataError(f"{key}: {uri}: expected one file in the archive, found {len(members)}")
        member = members[0]
        info = path.stat()
        digest = short_digest([str(path), info.st_size, int(info.st_mtime), member.filename])
        location = config.store.data(config.pipeline, "extracted", digest)
        fs = HadoopFS(spark)
        if fs.exists(location):
            return location
        if scratch is not None:
            return to_uri(str(extracted_member(archive, member, Path(scratch) / digest).parent))
        with atomic_output(spark, location) as temporary, tempfile.TemporaryDirectory() as local:
            extracted = extracted_member(archive, member, Path(local))
            fs.copy_from_local(str(extracted), join(temporary, extracted.name))
    return location


def extracted_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, directory: Path) -> Path:
    """``member`` of ``archive`` written into ``directory`` under its own file name."""
    directory.mkdir(parents=True, exist_ok=True)
    extracted = directory / Path(member.filename).name
    with archive.open(member) as source, extracted.open("wb") as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)
    return extracted


# --- reading -----------------------------------------------------------------------------------------

def declared_columns(config: TabularConfig) -> list[DeclaredColumn]:
    return [DeclaredColumn(column, sql_type, written=written_as(config, column))
            for column, sql_type in config.columns.items()]


def written_as(config: TabularConfig, column: str) -> WrittenAs:
    spec = config.formats.get(column)
    return WrittenAs(spec.format, spec.decimal, spec.thousands) if spec else WrittenAs()


def text_format(config: TabularConfig) -> TextFormat:
    section = config.input
    return TextFormat(header=section.header, delimiter=section.delimiter,
                      null_values=tuple(v.strip() for v in section.null_values), multiline=section.multiline)


def typed_rows(spark: SparkSession, config: TabularConfig, files: list, label_optional: bool
               ) -> tuple[DataFrame, list[str]]:
    """Declared columns (``try_cast`` to the declared type) and ``__raw_<c>`` (as written) of every file, each
    file read with its own header (CSV) or footer schema (Parquet); every declared column must be in every file
    (the label only when training)."""
    declared, text = declared_columns(config), text_format(config)
    if config.input.format == "csv" and config.input.skip_lines:
        read = first_line_skipped(spark, files, declared, text)
    else:
        read = read_parts(spark, files, config.input.format, declared, text)
    if not read.parts:
        raise DataError(f"{files[0][0]}: no rows: every input file is empty ({len(files)} file(s))")
    required = [c for c in config.columns if not (label_optional and c == config.label)]
    found = {name for part in read.parts for name in fields_of(part, declared)}
    return (union_parts([declared_rows(part, declared, required, text) for part in read.parts]),
            [c for c in config.columns if c in found])


def first_line_skipped(spark: SparkSession, files: list, declared: list[DeclaredColumn], text: TextFormat
                       ) -> InputRead:
    """Header-less CSV files whose first line is not a row (``input.skip_lines: 1``), the columns the schema's in
    its order: Spark's own ``header=true`` with the schema enforced, which drops the first (non-blank) line of
    every file without reading names from it, exactly as an example that reads header-less files that way."""
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")  # as read_parts: short lines seen
    names = [column.name for column in declared]
    fields = [f"_c{i}" for i in range(len(names))]
    schema = T.StructType([T.StructField(name, T.StringType(), True) for name in fields]
                          + [T.StructField(CORRUPT, T.StringType(), True)])
    frame = (spark.read.schema(schema).option("header", True).option("enforceSchema", True)
             .option("sep", text.delimiter).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
             .csv([f[0] for f in files]))
    return InputRead([FilePart(frame, names, files, True, fields)])


def rules(config: TabularConfig, label_optional: bool = False) -> list[tuple[str, Column]]:
    """(reason, row-is-bad condition) in order; a row is quarantined for the first rule it breaks. When
    scoring (``label_optional``) the rules on the label are left out: a row to score has no label."""
    checked = [c for c in config.columns if not (label_optional and c == config.label)]
    v = config.validation
    found = [(MALFORMED, F.col(RAW_LINE).isNotNull())]
    found += [(f"bad_value:{c}", bad_value(c)) for c in checked]
    found += [(f"required:{c}", _quoted(c).isNull()) for c in v.required if c in checked]
    for column, bounds in v.ranges.items():
        if column in checked:
            value = _quoted(column)
            outside = F.lit(False)
            if bounds.min is not None:
                outside = outside | (value < F.lit(bounds.min))
            if bounds.max is not None:
                outside = outside | (value > F.lit(bounds.max))
            found.append((f"range:{column}", F.coalesce(outside, F.lit(False))))
    for column, values in v.allowed.items():
        if column in checked:
            value = _quoted(column)
            if is_numeric(config.columns[column]):
                allowed = value.isin(*values)
            else:
                allowed = value.cast("string").isin(*[str(x).lower() if isinstance(x, bool) else str(x)
                                                      for x in values])
            found.append((f"allowed:{column}", value.isNotNull() & ~allowed))
    return found


def tagged_rows(spark: SparkSession, config: TabularConfig, files: list, label_optional: bool = False) -> Tagged:
    """Every row of ``files`` with its declared, typed columns, ``__raw_<c>``, ``raw_line``, ``source_file`` and
    ``reason`` (ingest and scoring alike)."""
    typed, found = typed_rows(spark, config, files, label_optional)
    return tag(typed, rules(config, label_optional), schema=schema_ddl(config), duplicates=config.ingest.duplicates,
               key_columns=list(config.columns), columns_found=found)


# --- the stage ---------------------------------------------------------------------------------------

def ingest(spark: SparkSession, config: TabularConfig) -> IngestStats:
    """Read ``input.uri`` with the declared schema, validate, and commit valid + quarantine atomically; the same
    for ``input.test_uri`` when set (its own location, :func:`holdout_location`). Returns the stats of
    ``input.uri``."""
    if config.input.test_uri:
        ingest_one(spark, config, config.input.test_uri, "input.test_uri", holdout_location(config))
    return ingest_one(spark, config, config.input.uri, "input.uri", ingest_location(config))


def ingest_one(spark: SparkSession, config: TabularConfig, uri: str, key: str, output: str) -> IngestStats:
    one = ingest_input(spark, config, uri, key)
    stats = commit(spark, one.tagged, one.files, output, source=one.source, input_format=one.input_format,
                   on_unreadable_file=one.on_unreadable_file)
    require_mostly_valid(spark, output, stats, one.max_quarantine_fraction, one.advice)
    return stats


def ingest_input(spark: SparkSession, config: TabularConfig, uri: str, key: str,
                 scratch: str | None = None) -> IngestInput:
    """The input ``key`` names as the ingest reads it: its files, their tagging, the share that may be quarantined
    and the advice when more is (the ingest commits it, the ingest check samples it)."""
    uri = resolve_uri(spark, config, uri, key, scratch)
    return IngestInput(key=key, source=uri, files=list_input_files(spark, uri),
                       tagged=lambda files: tagged_rows(spark, config, files), input_format=config.input.format,
                       on_unreadable_file=config.ingest.on_unreadable_file,
                       max_quarantine_fraction=config.ingest.max_quarantine_fraction,
                       advice=lambda reason: quarantine_advice(config, reason))


@contextlib.contextmanager
def ingest_check(spark: SparkSession, config: TabularConfig) -> Iterator[list[IngestInput]]:
    """What ``jobs.ingest --check`` samples: ``input.uri`` and ``input.test_uri`` (when set), as the ingest reads
    them. An archive the store holds no extracted copy of is extracted into a temporary directory, removed after:
    the check writes nothing in the store."""
    keys = {"input.uri": config.input.uri, "input.test_uri": config.input.test_uri}
    with tempfile.TemporaryDirectory(prefix="ingest-check-") as scratch:
        inputs = [ingest_input(spark, config, uri, key, scratch) for key, uri in keys.items() if uri]
        # An archive extracted for the check is named as the conf names it, not by its temporary copy.
        yield [replace(one, source=keys[one.key]) if one.source.startswith(to_uri(scratch)) else one
               for one in inputs]


def quarantine_advice(config: TabularConfig, reason: str) -> str:
    """What a user can check or set when most rows are quarantined for ``reason``, in the conf's own keys."""
    kind, _, column = reason.partition(":")
    if kind == MALFORMED:
        if config.input.format == "json" and not config.input.multiline:
            return ("is the file one JSON array, or objects pretty-printed over several lines? JSON lines (one "
                    "object per line) are read unless input.multiline: true")
        if config.input.format == "csv":
            return (f"lines do not split into the {len(config.columns)} declared columns: check input.delimiter "
                    f"({config.input.delimiter!r}), input.header and the schema's columns")
        return ""
    if kind == "bad_value":
        sql_type = config.columns.get(column, "")
        written = config.formats.get(column)
        if sql_type in ("date", "timestamp", "timestamp_ntz"):
            if written and written.format:
                return f"they do not fit schema.{column}.format {written.format!r}"
            default = "yyyy-MM-dd" if sql_type == "date" else "yyyy-MM-dd HH:mm:ss"
            return (f"they do not parse as {sql_type} (written {default}); set schema.{column}.format to how they "
                    "are written (a Spark datetime pattern such as yyyy/MM/dd, or epoch_seconds / epoch_millis)")
        if is_numeric(sql_type):
            return (f"they do not parse as {sql_type}; numbers written 1.234,5 need schema.{column}.decimal: ',' "
                    f"and schema.{column}.thousands: '.'")
        return f"they do not parse as {sql_type}; check schema.{column}"
    if kind == "required":
        return f"{column} is missing; validation.required lists it"
    if kind == "range":
        return f"outside validation.ranges.{column}"
    if kind == "allowed":
        return f"not in validation.allowed.{column}"
    return ""
