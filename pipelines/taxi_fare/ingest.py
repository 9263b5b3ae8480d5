"""Read TLC trip files, map them to the canonical schema, and split valid rows from a quarantine.

Nothing is dropped: every input row lands either in ``valid`` or in ``quarantine`` with a ``reason`` and what it
was read from (the line, or its raw values), in one pass whose counts are checked before anything is committed
(:mod:`spark_ml_pipeline.ingest.quarantine`). Files are read by :mod:`spark_ml_pipeline.ingest.tables`, each with
its own header or footer schema. This module holds what is TLC-specific: column aliases, the schema generation,
and the rules a trip must pass.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.zones import UNKNOWN_ZONES
from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.quarantine import (MALFORMED, RAW_LINE, SOURCE_FILE, IngestInput, IngestStats, Tagged,
                                                 commit, tag)
from spark_ml_pipeline.ingest.tables import (DeclaredColumn, bad_value, declared_rows, fields_of, read_parts,
                                             union_parts)
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS, to_uri

LABEL = "fare_amount"
RATE_CODES = (1, 2, 3, 4, 5, 6)  # standard, JFK, Newark, Nassau/Westchester, negotiated, group ride
# A TLC monthly file names its month (yellow_tripdata_2019-03.csv): the month its trips were picked up in.
# Matched in the file's own name only, as a whole token (never inside a part file's UUID).
FILE_MONTH = r"(?<![0-9A-Za-z])((?:19|20)\d{2}-(?:0[1-9]|1[0-2]))(?![0-9A-Za-z])[^/]*$"
FILE_MONTH_COLUMN = "__file_month"  # while rows are tagged: the month (yyyymm) their file's name holds


def declared_columns(spellings: tlc.Spellings) -> list[DeclaredColumn]:
    return [DeclaredColumn(name, data_type.simpleString(), spellings.aliases(name))
            for name, (data_type, _) in tlc.CANONICAL_COLUMNS.items()]


@dataclass(frozen=True)
class ValidationRules:
    """Ranges a trip must fall in (the NVIDIA example's filters, plus distance, time order and pickup time)."""

    fare_min_exclusive: float = 0.0
    fare_max: float = 500.0
    passenger_min: int = 0
    passenger_max: int = 6
    distance_max_miles: float = 100.0
    longitude_range: tuple[float, float] = (-75.0, -73.0)
    latitude_range: tuple[float, float] = (40.0, 42.0)
    earliest_pickup: str = "2009-01-01"  # the first TLC trip records; the latest is tomorrow
    # A file whose name holds a month (yellow_tripdata_2019-03.csv) holds trips picked up in that month.
    pickup_in_file_month: bool = True


# --- reading -----------------------------------------------------------------------------------------

def resolve_version(columns: list[str], requested: str, where: str, label_required: bool = True,
                    spellings: tlc.Spellings = tlc.KNOWN_SPELLINGS) -> str:
    """The TLC generation of files with these columns; its required columns must be there (the fare only when
    ``label_required``: scoring reads files without it), each spelled by one column only."""
    ambiguous = spellings.ambiguous(columns)
    if ambiguous:
        name, spelling_it = next(iter(ambiguous.items()))
        raise DataError(f"{where}: columns {' and '.join(repr(c) for c in spelling_it)} all spell {name}; "
                        f"set ingest.columns: {{{spelling_it[0]}: {name}}} to read one of them")
    version = spellings.detect_version(columns) if requested == "auto" else requested
    if version is None:
        raise DataError(f"{where}: cannot tell the TLC schema from columns {columns}; expected "
                        "pickup_longitude/pickup_latitude (legacy) or PULocationID/DOLocationID (current), or map "
                        "the file's own names with ingest.columns: {their_name: canonical_name}")
    missing = [name for name in spellings.missing_columns(columns, version) if label_required or name != LABEL]
    if missing:
        aliases = {name: spellings.aliases(name)[0] for name in missing}
        raise DataError(f"{where}: missing required {version}-schema column(s) "
                        + ", ".join(f"{name} (e.g. '{alias}')" for name, alias in aliases.items())
                        + "; if the file names it otherwise, set ingest.columns: {their_name: canonical_name}")
    return version


def read_canonical(spark: SparkSession, files: list, input_format: str, tlc_schema: str = "auto",
                   label_required: bool = True, spellings: tlc.Spellings = tlc.KNOWN_SPELLINGS
                   ) -> tuple[DataFrame, str, list[str]]:
    """Canonical trip rows (with ``__raw_<column>``) of every input file, each read with its own layout; the
    TLC generation they share (files of both generations in one input are refused, naming one of each); the
    canonical columns the files hold."""
    declared = declared_columns(spellings)
    read = read_parts(spark, files, input_format, declared)
    if not read.parts:
        raise DataError(f"{files[0][0]}: no rows: every input file is empty ({len(files)} file(s))")
    versions = {part.where: resolve_version(part.columns, tlc_schema, part.where, label_required, spellings)
                for part in read.parts}
    if len(set(versions.values())) > 1:
        examples = ", ".join(f"{where} is {version}" for where, version in versions.items())
        raise DataError(f"the input mixes TLC schemas ({examples}); ingest each schema separately")
    # resolve_version has checked the required columns, naming the TLC spelling of each
    frames = [declared_rows(part, declared, required=[]) for part in read.parts]
    found = {name for part in read.parts for name in fields_of(part, declared)}
    return union_parts(frames), next(iter(versions.values())), [c for c in tlc.CANONICAL_ORDER if c in found]


# --- validation --------------------------------------------------------------------------------------

def file_months(spark: SparkSession, files: list) -> dict[str, int]:
    """The month (yyyymm) each file's name holds (``FILE_MONTH``), by the name as rows carry it (URL-encoded);
    files whose name holds no month (Spark's part files) are left out."""
    fs, months = HadoopFS(spark), {}
    for uri, *_ in files:
        match = re.search(FILE_MONTH, uri)
        if match:
            months[fs.encoded_name(uri)] = int(match.group(1).replace("-", ""))
    return months


def with_file_month(spark: SparkSession, rows: DataFrame, months: dict[str, int]) -> DataFrame:
    """``__file_month``: the month of the row's file (null when its name holds none). A broadcast join on the
    file's name: a regular expression on every row's path cost seconds per million rows."""
    table = spark.createDataFrame(sorted(months.items()), f"__file_name string, {FILE_MONTH_COLUMN} int")
    name = F.substring_index(F.col(SOURCE_FILE), "/", -1)
    return rows.join(F.broadcast(table), name == table["__file_name"], "left").drop("__file_name")


def validation_rules(version: str, rules: ValidationRules, label_required: bool = True,
                     month_of_file: bool = False) -> list[tuple[str, Column]]:
    """(reason, row-is-bad condition) in order; a row is quarantined for the first rule it breaks. Without
    ``label_required`` (scoring) the fare is judged by no rule: it is what the model predicts. A value that does
    not fit its type is ``bad_value:<column>`` in a required column; elsewhere it is null and counted.
    ``month_of_file``: the rows carry ``__file_month`` (:func:`with_file_month`) for the file-month rule."""
    required = [name for name in tlc.REQUIRED[version] if label_required or name != LABEL]
    required_null = F.lit(False)
    for name in required:
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
    latest = datetime.date.today() + datetime.timedelta(days=1)
    pickup = F.col("pickup_datetime")
    file_month = F.col(FILE_MONTH_COLUMN)
    return [
        (MALFORMED, F.col(RAW_LINE).isNotNull()),
        *[(f"bad_value:{name}", bad_value(name)) for name in required],
        ("missing_value", required_null),
        *(fare_rules if label_required else []),
        ("distance_out_of_range", (distance <= 0) | (distance > rules.distance_max_miles)),
        ("passenger_count_out_of_range", ~passengers.between(rules.passenger_min, rules.passenger_max)),
        ("location_out_of_range", location_bad),
        ("pickup_out_of_range", (pickup < F.lit(rules.earliest_pickup).cast("timestamp_ntz"))
         | (pickup >= F.lit(latest.isoformat()).cast("timestamp_ntz"))),
        ("dropoff_before_pickup", F.col("dropoff_datetime") < pickup),
        # 99 and other codes outside the TLC's list occur in real files
        ("rate_code_out_of_range", F.col("rate_code").isNotNull() & ~F.col("rate_code").isin(*RATE_CODES)),
        *([("pickup_outside_file_month",
            file_month.isNotNull() & (F.year(pickup) * 100 + F.month(pickup) != file_month))]
          if rules.pickup_in_file_month and month_of_file else []),
    ]


def tagged_trips(spark: SparkSession, files: list, input_format: str, tlc_schema: str = "auto",
                 rules: ValidationRules = ValidationRules(), label_required: bool = True,
                 duplicates: str = "keep", spellings: tlc.Spellings = tlc.KNOWN_SPELLINGS) -> Tagged:
    """The trips of ``files``, canonical and tagged with the first rule each breaks (ingest and scoring alike)."""
    canonical, version, found = read_canonical(spark, files, input_format, tlc_schema, label_required, spellings)
    months = file_months(spark, files) if rules.pickup_in_file_month else {}
    if months:
        canonical = with_file_month(spark, canonical, months)
    tagged = tag(canonical, validation_rules(version, rules, label_required, month_of_file=bool(months)),
                 schema=version, duplicates=duplicates, key_columns=tlc.CANONICAL_ORDER, columns_found=found)
    return replace(tagged, rows=tagged.rows.drop(FILE_MONTH_COLUMN))


# --- the stage ---------------------------------------------------------------------------------------

def ingest(spark: SparkSession, source: str, output: str, input_format: str = "parquet",
           tlc_schema: str = "auto", rules: ValidationRules = ValidationRules(), files: list | None = None,
           on_unreadable_file: str = "fail", duplicates: str = "keep",
           spellings: tlc.Spellings = tlc.KNOWN_SPELLINGS) -> IngestStats:
    """Read ``source`` (or only ``files`` of it: an incremental run), validate, and commit ``output/valid`` +
    ``output/quarantine`` atomically."""
    trips = trips_input(spark, source, input_format, tlc_schema, rules, files, on_unreadable_file, duplicates,
                        spellings)
    return commit(spark, trips.tagged, trips.files, output, source=trips.source, input_format=trips.input_format,
                  on_unreadable_file=trips.on_unreadable_file)


def trips_input(spark: SparkSession, source: str, input_format: str = "parquet", tlc_schema: str = "auto",
                rules: ValidationRules = ValidationRules(), files: list | None = None,
                on_unreadable_file: str = "fail", duplicates: str = "keep",
                spellings: tlc.Spellings = tlc.KNOWN_SPELLINGS, max_quarantine_fraction: float = 1.0,
                key: str = "ingest.input") -> IngestInput:
    """The trip files of ``source`` (or ``files`` of it) as the ingest reads and tags them (the ingest commits
    them, the ingest check samples them)."""
    if input_format not in ("csv", "parquet"):
        raise DataError(f"{source}: unsupported input format {input_format!r} (parquet or csv)")
    source = to_uri(source)
    return IngestInput(key=key, source=source, files=files or list_input_files(spark, source),
                       tagged=lambda readable: tagged_trips(spark, readable, input_format, tlc_schema, rules,
                                                            duplicates=duplicates, spellings=spellings),
                       input_format=input_format, on_unreadable_file=on_unreadable_file,
                       max_quarantine_fraction=max_quarantine_fraction)
