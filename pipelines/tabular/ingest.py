"""Reading a tabular data set as declared, and splitting its rows into valid ones and a quarantine.

Files are read as text columns (CSV / JSON) or as stored (Parquet) and then ``try_cast`` to the declared
types, so nothing fails halfway and nothing is silently nulled: a line Spark cannot parse is quarantined as
``malformed_line`` (its raw text kept), a value that does not fit its declared type as ``bad_value:<column>``
(the row's raw values kept as JSON), and the configured rules as ``required:<column>``, ``range:<column>``
and ``allowed:<column>``. Scoring reads with the same code and the same rules, the label being optional.
"""
from __future__ import annotations

import csv
import tempfile
import zipfile
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.tabular.config import PACKAGE_SCHEME, TabularConfig, is_numeric
from spark_ml_pipeline.ingest.files import CORRUPT, list_input_files, read_parquet
from spark_ml_pipeline.ingest.packaged import find_package_file
from spark_ml_pipeline.ingest.quarantine import RAW_LINE, REASON, SOURCE_FILE, IngestStats, commit, tag_rows
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.errors import ConfigError, DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, is_local_uri, join, local_path, short_digest, to_uri

RAW_PREFIX = "__raw_"
MALFORMED = "malformed_line"


def ingest_location(config: TabularConfig) -> str:
    return config.store.data(config.pipeline, "ingest", f"run_date={run_date(config)}")


def schema_ddl(config: TabularConfig) -> str:
    return ", ".join(f"{column} {sql_type}" for column, sql_type in config.columns.items())


def _quoted(column: str) -> Column:
    return F.col(f"`{column}`")


# --- where the files are -----------------------------------------------------------------------------

def resolve_uri(spark: SparkSession, config: TabularConfig, uri: str, key: str = "input.uri") -> str:
    """A readable URI: ``package:<pkg>/<path>`` located in the installed package, a ``.zip`` extracted once."""
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
        return extract_zip(spark, config, uri, key)
    return uri


def extract_zip(spark: SparkSession, config: TabularConfig, uri: str, key: str = "input.uri") -> str:
    """The single data file of a local ``.zip``, extracted once into the store (keyed by the archive's path,
    size and modification time) and committed atomically: later runs read the extracted copy."""
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
        location = config.store.data(config.pipeline, "extracted",
                                     short_digest([str(path), info.st_size, int(info.st_mtime), member.filename]))
        fs = HadoopFS(spark)
        if not fs.exists(location):
            with atomic_output(spark, location) as temporary, tempfile.TemporaryDirectory() as scratch:
                extracted = Path(scratch) / Path(member.filename).name
                with archive.open(member) as source, extracted.open("wb") as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
                fs.copy_from_local(str(extracted), join(temporary, extracted.name))
    return location


# --- reading -----------------------------------------------------------------------------------------

def _header(spark: SparkSession, first_file: str, delimiter: str) -> list[str]:
    line = spark.read.text(first_file).first()
    if line is None:
        raise DataError(f"{first_file}: empty CSV file (input.header is true: a header line is required)")
    return [name.strip().lstrip("\ufeff") for name in next(csv.reader([line["value"]], delimiter=delimiter))]


def read_text_columns(spark: SparkSession, config: TabularConfig, uri: str, files: list) -> tuple[DataFrame, list]:
    """The files as Spark reads them (CSV / JSON: every column as text) and the columns they hold."""
    section = config.input
    if section.format == "parquet":
        raw = read_parquet(spark, uri)
        return raw, raw.columns
    if section.format == "csv":
        if section.header:
            names = _header(spark, files[0][0], section.delimiter)
        else:
            names = list(config.columns)
        schema = T.StructType([T.StructField(n, T.StringType(), True) for n in names]
                              + [T.StructField(CORRUPT, T.StringType(), True)])
        raw = (spark.read.schema(schema).option("header", section.header).option("sep", section.delimiter)
               .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT).csv(uri))
        return raw, names
    schema = T.StructType([T.StructField(n, T.StringType(), True) for n in config.columns]
                          + [T.StructField(CORRUPT, T.StringType(), True)])
    raw = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
           .json(uri))
    return raw, list(config.columns)


def count_rows(spark: SparkSession, config: TabularConfig, uri: str, files: list) -> int:
    """Rows in the input counted independently of parsing (text: non-blank lines, minus CSV headers)."""
    if config.input.format == "parquet":
        return read_parquet(spark, uri).count()
    lines = spark.read.text(uri).where(F.length(F.trim("value")) > 0).count()
    return lines - len(files) if config.input.format == "csv" and config.input.header else lines


def typed_rows(raw: DataFrame, present: list[str], config: TabularConfig, label_optional: bool) -> DataFrame:
    """Declared columns as ``__raw_<c>`` (as read) and ``<c>`` (try_cast to the declared type)."""
    missing = [c for c in config.columns if c not in present and not (label_optional and c == config.label)]
    if missing:
        raise DataError(f"{config.input.format} input: declared column(s) {', '.join(missing)} not in the file(s) "
                        f"(columns: {', '.join(c for c in present if c != CORRUPT)})")
    null_values = [v.strip() for v in config.input.null_values]
    selected = []
    for column in config.columns:
        if column not in present:
            selected.append(F.lit(None).cast("string").alias(RAW_PREFIX + column))
            continue
        value = _quoted(column)
        if dict(raw.dtypes)[column] == "string":
            value = F.when(~F.trim(value).isin(*null_values), value) if null_values else value
        selected.append(value.alias(RAW_PREFIX + column))
    corrupt = F.col(CORRUPT) if CORRUPT in raw.columns else F.lit(None).cast("string")
    staged = raw.select(*selected, corrupt.alias(RAW_LINE), F.input_file_name().alias(SOURCE_FILE))
    casts = {}
    for column, sql_type in config.columns.items():
        source = F.col(RAW_PREFIX + column)
        if sql_type != "string" and dict(staged.dtypes)[RAW_PREFIX + column] == "string":
            source = F.trim(source)
        casts[column] = source.try_cast(sql_type)
    return staged.withColumns(casts)


def rules(config: TabularConfig, label_optional: bool = False) -> list[tuple[str, Column]]:
    """(reason, row-is-bad condition) in order; a row is quarantined for the first rule it breaks. When
    scoring (``label_optional``) the rules on the label are left out: a row to score has no label."""
    checked = [c for c in config.columns if not (label_optional and c == config.label)]
    v = config.validation
    found = [(MALFORMED, F.col(RAW_LINE).isNotNull())]
    found += [(f"bad_value:{c}", F.col(RAW_PREFIX + c).isNotNull() & _quoted(c).isNull()) for c in checked]
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


def tagged_rows(spark: SparkSession, config: TabularConfig, uri: str, label_optional: bool = False
                ) -> tuple[DataFrame, list, list[str]]:
    """Every input row with its declared, typed columns, ``raw_line``, ``source_file`` and ``reason``; the
    input files; the columns the files hold."""
    files = list_input_files(spark, uri)
    raw, present = read_text_columns(spark, config, uri, files)
    typed = typed_rows(raw, present, config, label_optional)
    tagged = tag_rows(typed, rules(config, label_optional))
    raw_values = F.to_json(F.struct(*[F.col(RAW_PREFIX + c).alias(c) for c in config.columns]))
    keep_raw = F.coalesce(F.col(RAW_LINE), F.when(F.col(REASON).startswith("bad_value:"), raw_values))
    columns = [_quoted(c) for c in config.columns]
    return tagged.select(*columns, keep_raw.alias(RAW_LINE), SOURCE_FILE, REASON), files, present


# --- the stage ---------------------------------------------------------------------------------------

def ingest(spark: SparkSession, config: TabularConfig) -> IngestStats:
    """Read ``input.uri`` with the declared schema, validate, and commit valid + quarantine atomically."""
    uri = resolve_uri(spark, config, config.input.uri)
    tagged, files, _ = tagged_rows(spark, config, uri)
    rows_in = count_rows(spark, config, uri, files)
    return commit(spark, tagged, ingest_location(config), rows_in=rows_in, source=uri, schema=schema_ddl(config),
                  input_format=config.input.format, files=files)
