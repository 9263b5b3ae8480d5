"""Read TLC trip files, map them to the canonical schema, and split valid rows from a quarantine.

Nothing is dropped: every input row lands either in ``valid`` or in ``quarantine`` with a ``reason``
(malformed CSV lines keep their raw text), and ``rows_in == rows_valid + rows_quarantined`` is
checked against an independent count of the input before anything is committed.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines import tlc
from pipelines.errors import DataError
from pipelines.io import HadoopFS, atomic_output, join, to_uri
from pipelines.zones import UNKNOWN_ZONES

CORRUPT = "_corrupt_record"
VALID, QUARANTINE, STATS = "valid", "quarantine", "_ingest.json"


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


@dataclass
class IngestStats:
    input: str
    tlc_schema: str
    input_format: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    input_files: list[tuple[str, int, int]] = field(default_factory=list)


# --- reading -----------------------------------------------------------------------------------------

def list_input_files(spark: SparkSession, source: str) -> list[tuple[str, int, int]]:
    try:
        files = HadoopFS(spark).list_files(source)
    except Exception as exc:  # py4j wraps Hadoop's IOException: name the path, not the stack
        raise DataError(f"{source}: cannot list input files ({str(exc).splitlines()[0]})") from None
    if not files:
        raise DataError(f"{source}: no input files found")
    return files


def _csv_header(spark: SparkSession, first_file: str) -> list[str]:
    line = spark.read.text(first_file).first()
    if line is None:
        raise DataError(f"{first_file}: empty CSV file (a header line is required)")
    return next(csv.reader([line["value"]]))


def resolve_version(columns: list[str], requested: str, where: str) -> str:
    version = tlc.detect_version(columns) if requested == "auto" else requested
    if version is None:
        raise DataError(f"{where}: cannot tell the TLC schema from columns {columns}; "
                        "expected pickup_longitude/pickup_latitude (legacy) or PULocationID/DOLocationID (current)")
    missing = tlc.missing_columns(columns, version)
    if missing:
        aliases = {name: tlc.CANONICAL_COLUMNS[name][1][0] for name in missing}
        raise DataError(f"{where}: missing required {version}-schema column(s) "
                        + ", ".join(f"{name} (e.g. '{alias}')" for name, alias in aliases.items()))
    return version


def read_raw(spark: SparkSession, source: str, input_format: str, files: list) -> tuple[DataFrame, list[str]]:
    """The files as Spark reads them, plus their own column names (partition columns excluded)."""
    if input_format == "csv":
        header = _csv_header(spark, files[0][0])
        schema = tlc.file_schema(header).add(T.StructField(CORRUPT, T.StringType(), True))
        raw = (spark.read.schema(schema).option("header", True).option("mode", "PERMISSIVE")
               .option("columnNameOfCorruptRecord", CORRUPT).option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss[.SSSSSS]")
               .csv(source))
        return raw, header
    if input_format == "parquet":
        try:
            raw = spark.read.parquet(source)
        except Exception as exc:
            raise DataError(f"{source}: not readable as Parquet ({str(exc).splitlines()[0][:300]})") from None
        partition_like = {"month", "year"}
        return raw, [c for c in raw.columns if c not in partition_like]
    raise DataError(f"{source}: unsupported input format {input_format!r} (parquet or csv)")


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
    return raw.select(*selected, corrupt.alias("raw_line"), F.input_file_name().alias("source_file"))


# --- validation --------------------------------------------------------------------------------------

def validation_rules(version: str, rules: ValidationRules) -> list[tuple[str, Column]]:
    """(reason, row-is-bad condition) in order; a row is quarantined for the first rule it breaks."""
    required_null = F.lit(False)
    for name in tlc.REQUIRED[version]:
        required_null = required_null | F.col(name).isNull()
    fare, distance, passengers = F.col("fare_amount"), F.col("trip_distance"), F.col("passenger_count")
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
    return [
        ("malformed_line", F.col("raw_line").isNotNull()),
        ("missing_value", required_null),
        ("fare_out_of_range", (fare <= rules.fare_min_exclusive) | (fare > rules.fare_max)),
        ("distance_out_of_range", (distance <= 0) | (distance > rules.distance_max_miles)),
        ("passenger_count_out_of_range", ~passengers.between(rules.passenger_min, rules.passenger_max)),
        ("location_out_of_range", location_bad),
        ("dropoff_before_pickup", F.col("dropoff_datetime") < F.col("pickup_datetime")),
    ]


def tag_rows(canonical: DataFrame, version: str, rules: ValidationRules) -> DataFrame:
    reason = F.coalesce(*[F.when(bad, F.lit(name)) for name, bad in validation_rules(version, rules)])
    return canonical.withColumn("reason", reason)


def count_input_rows(spark: SparkSession, source: str, input_format: str, files: list) -> int:
    """Rows in the input, counted independently of parsing (CSV: non-blank lines minus headers)."""
    if input_format == "parquet":
        return spark.read.parquet(source).count()
    lines = spark.read.text(source).where(F.length(F.trim("value")) > 0).count()
    return lines - len(files)


# --- the stage ---------------------------------------------------------------------------------------

def ingest(spark: SparkSession, source: str, output: str, input_format: str = "parquet",
           tlc_schema: str = "auto", rules: ValidationRules = ValidationRules()) -> IngestStats:
    """Read ``source``, validate, and commit ``output/valid`` + ``output/quarantine`` atomically."""
    source = to_uri(source)
    files = list_input_files(spark, source)
    raw, file_columns = read_raw(spark, source, input_format, files)
    version = resolve_version(file_columns, tlc_schema, source)
    tagged = tag_rows(to_canonical(raw, file_columns), version, rules)
    rows_in = count_input_rows(spark, source, input_format, files)

    with atomic_output(spark, output) as temporary:
        status = F.when(F.col("reason").isNull(), F.lit(VALID)).otherwise(F.lit(QUARANTINE))
        tagged.withColumn("status", status).write.partitionBy("status").parquet(join(temporary, "_tagged"))
        fs = HadoopFS(spark)
        for name in (VALID, QUARANTINE):
            tagged_dir = join(temporary, "_tagged", f"status={name}")
            if not fs.exists(tagged_dir):  # no row of that kind: still publish an empty dataset
                empty = spark.createDataFrame([], tagged.schema)
                empty.write.parquet(tagged_dir)
            fs.rename(tagged_dir, join(temporary, name))
        fs.delete(join(temporary, "_tagged"))
        # The valid set drops the quarantine-only columns.
        valid_count = spark.read.parquet(join(temporary, VALID)).count()
        by_reason = {row["reason"]: row["count"] for row in
                     spark.read.parquet(join(temporary, QUARANTINE)).groupBy("reason").count().collect()}
        quarantined = sum(by_reason.values())
        if valid_count + quarantined != rows_in:
            raise DataError(f"{source}: read {rows_in} rows but accounted for {valid_count} valid + "
                            f"{quarantined} quarantined; refusing to commit")
        stats = IngestStats(input=source, tlc_schema=version, input_format=input_format, rows_in=rows_in,
                            rows_valid=valid_count, rows_quarantined=quarantined,
                            quarantined_by_reason=dict(sorted(by_reason.items())), input_files=files)
        fs.write_text(join(temporary, STATS), json.dumps(asdict(stats), indent=2))
    return stats


def read_valid(spark: SparkSession, output: str) -> DataFrame:
    return spark.read.parquet(join(output, VALID)).drop("reason", "raw_line")


def read_quarantine(spark: SparkSession, output: str) -> DataFrame:
    return spark.read.parquet(join(output, QUARANTINE))


def read_stats(spark: SparkSession, output: str) -> IngestStats:
    data = json.loads(HadoopFS(spark).read_text(join(output, STATS)))
    data["input_files"] = [tuple(f) for f in data["input_files"]]
    return IngestStats(**data)
