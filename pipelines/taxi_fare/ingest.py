"""Read TLC trip files, map them to the canonical schema, and split valid rows from a quarantine.

Nothing is dropped: every input row lands either in ``valid`` or in ``quarantine`` with a ``reason``
(malformed CSV lines keep their raw text), and ``rows_in == rows_valid + rows_quarantined`` is
checked against an independent count of the input before anything is committed
(:mod:`spark_ml_pipeline.ingest.quarantine`). This module holds what is TLC-specific: column aliases,
the schema generation, and the rules a trip must pass.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.zones import UNKNOWN_ZONES
from spark_ml_pipeline.ingest.files import (CORRUPT, count_input_rows, csv_headers, list_input_files, read_csv,
                                            read_parquet)
from spark_ml_pipeline.ingest.ledger import files_glob
from spark_ml_pipeline.ingest.quarantine import RAW_LINE, SOURCE_FILE, IngestStats, commit, tag_rows
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import to_uri

PARTITION_COLUMNS = {"month", "year"}
LABEL = "fare_amount"


@dataclass(frozen=True)
class ValidationRules:
    """Ranges a trip must fall in (the NVIDIA example's filters, plus distance and time order)."""

    fare_min_exclusive: float = 0.0
    fare_max: float = 500.0
    passenger_min: int = 0
    passenger_max: int = 6
    distance_max_miles: float = 100.0
    longitude_range: tuple[float, float] = (-75.0, -73.0)
    latitude_range: tuple[float, float] = (40.0, 42.0)


# --- reading -----------------------------------------------------------------------------------------

def resolve_version(columns: list[str], requested: str, where: str, label_required: bool = True) -> str:
    """The TLC generation of files with these columns; its required columns must be there (the fare only when
    ``label_required``: scoring reads files without it)."""
    version = tlc.detect_version(columns) if requested == "auto" else requested
    if version is None:
        raise DataError(f"{where}: cannot tell the TLC schema from columns {columns}; "
                        "expected pickup_longitude/pickup_latitude (legacy) or PULocationID/DOLocationID (current)")
    missing = [name for name in tlc.missing_columns(columns, version) if label_required or name != LABEL]
    if missing:
        aliases = {name: tlc.CANONICAL_COLUMNS[name][1][0] for name in missing}
        raise DataError(f"{where}: missing required {version}-schema column(s) "
                        + ", ".join(f"{name} (e.g. '{alias}')" for name, alias in aliases.items()))
    return version


def read_raw(spark: SparkSession, source: str, input_format: str, files: list,
             label_as_text: bool = False) -> list[tuple[DataFrame, list[str], str]]:
    """The files as Spark reads them: (frame, its own column names without partition columns, where) per group
    of CSV files sharing a header (each group read with its own header), or one part for Parquet.

    ``label_as_text`` (scoring) reads a CSV fare as text, so a non-numeric fare does not make the whole line
    malformed (``to_canonical`` try-casts it)."""
    if input_format == "csv":
        parts = []
        for header, group in csv_headers(spark, files).items():
            schema = T.StructType([T.StructField(f.name, T.StringType(), True)
                                   if label_as_text and tlc.canonical_name(f.name) == LABEL else f
                                   for f in tlc.file_schema(list(header)).fields])
            where = group[0][0] if len(group) == 1 else f"{source} ({len(group)} files with one header)"
            parts.append((read_csv(spark, files_glob(group), schema), list(header), where))
        return parts
    if input_format == "parquet":
        raw = read_parquet(spark, source)
        return [(raw, [c for c in raw.columns if c not in PARTITION_COLUMNS], source)]
    raise DataError(f"{source}: unsupported input format {input_format!r} (parquet or csv)")


def read_canonical(spark: SparkSession, source: str, input_format: str, files: list, tlc_schema: str = "auto",
                   label_required: bool = True) -> tuple[DataFrame, str]:
    """Canonical trip rows of every input file, and the TLC generation they share (files of both generations in
    one input are refused, naming one file of each)."""
    parts = read_raw(spark, source, input_format, files, label_as_text=not label_required)
    versions = {where: resolve_version(columns, tlc_schema, where, label_required) for _, columns, where in parts}
    if len(set(versions.values())) > 1:
        examples = ", ".join(f"{where} is {version}" for where, version in versions.items())
        raise DataError(f"{source}: the input mixes TLC schemas ({examples}); ingest each schema separately")
    canonical = [to_canonical(raw, columns) for raw, columns, _ in parts]
    return functools.reduce(DataFrame.unionByName, canonical), next(iter(versions.values()))


def to_canonical(raw: DataFrame, file_columns: list[str]) -> DataFrame:
    """Canonical columns (try-cast: a bad value becomes null and is quarantined, never an exception)."""
    by_canonical = {}
    for column in file_columns:
        name = tlc.canonical_name(column)
        if name and name not in by_canonical:
            by_canonical[name] = column
    selected = []
    for name, (data_type, _) in tlc.CANONICAL_COLUMNS.items():
        source = by_canonical.get(name)
        value = F.col(f"`{source}`").try_cast(data_type) if source else F.lit(None).cast(data_type)
        selected.append(value.alias(name))
    corrupt = F.col(CORRUPT) if CORRUPT in raw.columns else F.lit(None).cast("string")
    return raw.select(*selected, corrupt.alias(RAW_LINE), F.input_file_name().alias(SOURCE_FILE))


# --- validation --------------------------------------------------------------------------------------

def validation_rules(version: str, rules: ValidationRules, label_required: bool = True) -> list[tuple[str, Column]]:
    """(reason, row-is-bad condition) in order; a row is quarantined for the first rule it breaks. Without
    ``label_required`` (scoring) the fare is judged by no rule: it is what the model predicts."""
    required_null = F.lit(False)
    for name in tlc.REQUIRED[version]:
        if label_required or name != LABEL:
            required_null = required_null | F.col(name).isNull()
    fare, distance, passengers = F.col(LABEL), F.col("trip_distance"), F.col("passenger_count")
    if version == tlc.LEGACY:
        (lon_lo, lon_hi), (lat_lo, lat_hi) = rules.longitude_range, rules.latitude_range
        location_bad = F.lit(False)
        for end in ("pickup", "dropoff"):
            location_bad = (location_bad | ~F.col(f"{end}_longitude").between(lon_lo, lon_hi)
                            | ~F.col(f"{end}_latitude").between(lat_lo, lat_hi))
    else:
        location_bad = F.lit(False)
        for zone in ("pickup_zone", "dropoff_zone"):
            location_bad = location_bad | ~F.col(zone).between(1, UNKNOWN_ZONES[0] - 1)
    fare_rules = [("fare_out_of_range", (fare <= rules.fare_min_exclusive) | (fare > rules.fare_max))]
    return [
        ("malformed_line", F.col(RAW_LINE).isNotNull()),
        ("missing_value", required_null),
        *(fare_rules if label_required else []),
        ("distance_out_of_range", (distance <= 0) | (distance > rules.distance_max_miles)),
        ("passenger_count_out_of_range", ~passengers.between(rules.passenger_min, rules.passenger_max)),
        ("location_out_of_range", location_bad),
        ("dropoff_before_pickup", F.col("dropoff_datetime") < F.col("pickup_datetime")),
    ]


# --- the stage ---------------------------------------------------------------------------------------

def ingest(spark: SparkSession, source: str, output: str, input_format: str = "parquet",
           tlc_schema: str = "auto", rules: ValidationRules = ValidationRules(),
           files: list | None = None) -> IngestStats:
    """Read ``source`` (or only ``files`` of it: an incremental run), validate, and commit ``output/valid`` +
    ``output/quarantine`` atomically."""
    source = to_uri(source)
    read_from = files_glob(files) if files else source
    files = files or list_input_files(spark, source)
    canonical, version = read_canonical(spark, read_from, input_format, files, tlc_schema)
    tagged = tag_rows(canonical, validation_rules(version, rules))
    rows_in = count_input_rows(spark, read_from, input_format, files)
    return commit(spark, tagged, output, rows_in=rows_in, source=source, schema=version,
                  input_format=input_format, files=files)
