"""NYC TLC yellow-taxi trip schemas (legacy coordinates and current taxi zones).

Both generations map onto one *canonical* trip schema that validation and features work on. Column
names are matched case-insensitively through aliases, because real files spell them differently
across years (``RateCodeID``/``RatecodeID``, ``Airport_fee``/``airport_fee`` ...).
"""
from __future__ import annotations

from pyspark.sql import types as T

LEGACY = "legacy"
CURRENT = "current"
SCHEMA_VERSIONS = (LEGACY, CURRENT)

# canonical name -> (type, aliases as they appear in files, in order of preference)
CANONICAL_COLUMNS: dict[str, tuple[T.DataType, tuple[str, ...]]] = {
    "vendor_id": (T.StringType(), ("vendor_id", "VendorID", "vendor_name")),
    "pickup_datetime": (T.TimestampNTZType(), ("pickup_datetime", "tpep_pickup_datetime", "Trip_Pickup_DateTime")),
    "dropoff_datetime": (T.TimestampNTZType(), ("dropoff_datetime", "tpep_dropoff_datetime",
                                                "Trip_Dropoff_DateTime")),
    "passenger_count": (T.IntegerType(), ("passenger_count", "Passenger_Count")),
    "trip_distance": (T.DoubleType(), ("trip_distance", "Trip_Distance")),
    "pickup_longitude": (T.DoubleType(), ("pickup_longitude", "Start_Lon")),
    "pickup_latitude": (T.DoubleType(), ("pickup_latitude", "Start_Lat")),
    "dropoff_longitude": (T.DoubleType(), ("dropoff_longitude", "End_Lon")),
    "dropoff_latitude": (T.DoubleType(), ("dropoff_latitude", "End_Lat")),
    "pickup_zone": (T.IntegerType(), ("PULocationID",)),
    "dropoff_zone": (T.IntegerType(), ("DOLocationID",)),
    "rate_code": (T.IntegerType(), ("rate_code", "RatecodeID", "RateCodeID", "Rate_Code")),
    "store_and_fwd_flag": (T.StringType(), ("store_and_fwd_flag", "store_and_forward")),
    "payment_type": (T.StringType(), ("payment_type", "Payment_Type")),
    "fare_amount": (T.DoubleType(), ("fare_amount", "Fare_Amt")),
}
CANONICAL_ORDER = list(CANONICAL_COLUMNS)

# Columns a file of each generation must have (canonical names).
REQUIRED = {
    LEGACY: ("pickup_datetime", "passenger_count", "trip_distance", "pickup_longitude", "pickup_latitude",
             "dropoff_longitude", "dropoff_latitude", "fare_amount"),
    CURRENT: ("pickup_datetime", "passenger_count", "trip_distance", "pickup_zone", "dropoff_zone", "fare_amount"),
}

# The files' own column lists, as the generator writes them (and as the public files name them).
FILE_COLUMNS = {
    LEGACY: ["vendor_id", "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance",
             "pickup_longitude", "pickup_latitude", "rate_code", "store_and_fwd_flag", "dropoff_longitude",
             "dropoff_latitude", "payment_type", "fare_amount", "surcharge", "mta_tax", "tip_amount",
             "tolls_amount", "total_amount"],
    CURRENT: ["VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count", "trip_distance",
              "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID", "payment_type", "fare_amount",
              "extra", "mta_tax", "tip_amount", "tolls_amount", "improvement_surcharge", "total_amount",
              "congestion_surcharge", "airport_fee"],
}

# Types of file columns that have no canonical counterpart (money columns that leak the label).
_MONEY = T.DoubleType()


def canonical_name(file_column: str) -> str | None:
    """The canonical column a file column maps to, or None if it is not used."""
    lowered = file_column.lower()
    for name, (_, aliases) in CANONICAL_COLUMNS.items():
        if lowered in (alias.lower() for alias in aliases):
            return name
    return None


def detect_version(file_columns: list[str]) -> str | None:
    names = {canonical_name(c) for c in file_columns}
    if {"pickup_zone", "dropoff_zone"} <= names:
        return CURRENT
    if {"pickup_longitude", "pickup_latitude"} <= names:
        return LEGACY
    return None


def missing_columns(file_columns: list[str], version: str) -> list[str]:
    present = {canonical_name(c) for c in file_columns}
    return [name for name in REQUIRED[version] if name not in present]


def file_schema(file_columns: list[str]) -> T.StructType:
    """The explicit read schema for a delimited file with this header, in the file's column order."""
    fields = []
    for column in file_columns:
        name = canonical_name(column)
        data_type = CANONICAL_COLUMNS[name][0] if name else _MONEY if _looks_like_money(column) else T.StringType()
        fields.append(T.StructField(column, data_type, True))
    return T.StructType(fields)


def _looks_like_money(column: str) -> bool:
    lowered = column.lower()
    return lowered.endswith(("_amount", "_fee", "surcharge", "_tax", "extra")) or lowered in ("surcharge", "extra")


def generator_schema(version: str) -> T.StructType:
    """The schema the data generator writes for a TLC generation."""
    return file_schema(FILE_COLUMNS[version])
