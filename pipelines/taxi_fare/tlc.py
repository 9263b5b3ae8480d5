"""NYC TLC yellow-taxi trip schemas (legacy coordinates and current taxi zones).

Both generations map onto one *canonical* trip schema that validation and features work on. Column
names are matched case-insensitively through aliases, because real files spell them differently
across years (``RateCodeID``/``RatecodeID``, ``Airport_fee``/``airport_fee`` ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pyspark.sql import types as T

LEGACY = "legacy"
CURRENT = "current"
SCHEMA_VERSIONS = (LEGACY, CURRENT)

# canonical name -> (type, the spellings files use for it, in order of preference). Matched case-insensitively:
# the TLC's own files (VendorID, tpep_pickup_datetime, RatecodeID / RateCodeID, PULocationID ...), the 2009
# files (vendor_name, Trip_Pickup_DateTime, Start_Lon, Fare_Amt ...), green-taxi files (lpep_...) and the
# snake_case spellings of mirrors and exports (vendor_id, pickup_datetime, rate_code_id, pickup_location_id ...).
CANONICAL_COLUMNS: dict[str, tuple[T.DataType, tuple[str, ...]]] = {
    "vendor_id": (T.StringType(), ("vendor_id", "VendorID", "vendor_name")),
    "pickup_datetime": (T.TimestampNTZType(), ("pickup_datetime", "tpep_pickup_datetime", "lpep_pickup_datetime",
                                               "Trip_Pickup_DateTime")),
    "dropoff_datetime": (T.TimestampNTZType(), ("dropoff_datetime", "tpep_dropoff_datetime",
                                                "lpep_dropoff_datetime", "Trip_Dropoff_DateTime")),
    "passenger_count": (T.IntegerType(), ("passenger_count", "Passenger_Count")),
    "trip_distance": (T.DoubleType(), ("trip_distance", "Trip_Distance")),
    "pickup_longitude": (T.DoubleType(), ("pickup_longitude", "Start_Lon")),
    "pickup_latitude": (T.DoubleType(), ("pickup_latitude", "Start_Lat")),
    "dropoff_longitude": (T.DoubleType(), ("dropoff_longitude", "End_Lon")),
    "dropoff_latitude": (T.DoubleType(), ("dropoff_latitude", "End_Lat")),
    "pickup_zone": (T.IntegerType(), ("PULocationID", "pickup_location_id", "pu_location_id", "pickup_zone",
                                      "pickup_zone_id")),
    "dropoff_zone": (T.IntegerType(), ("DOLocationID", "dropoff_location_id", "do_location_id", "dropoff_zone",
                                       "dropoff_zone_id")),
    "rate_code": (T.IntegerType(), ("rate_code", "RatecodeID", "rate_code_id", "Rate_Code", "ratecode")),
    "store_and_fwd_flag": (T.StringType(), ("store_and_fwd_flag", "store_and_forward", "store_and_fwd")),
    "payment_type": (T.StringType(), ("payment_type", "Payment_Type", "payment_type_id")),
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


@dataclass(frozen=True)
class Spellings:
    """Which file column is which canonical column: the known spellings, or a user's own (``ingest.columns``:
    their name -> canonical name), which replace the known spellings of the canonical columns they name (an
    explicit mapping is never ambiguous with a known spelling). Matched case-insensitively."""

    mapped: tuple[tuple[str, str], ...] = ()  # (their name, canonical name): hashable, so a frozen dataclass

    @classmethod
    def of(cls, mapping: Mapping[str, str] | None) -> "Spellings":
        return cls(tuple((mapping or {}).items()))

    def aliases(self, canonical: str) -> tuple[str, ...]:
        theirs = tuple(name for name, target in self.mapped if target == canonical)
        return theirs or CANONICAL_COLUMNS[canonical][1]

    def canonical_name(self, file_column: str) -> str | None:
        """The canonical column a file column maps to, or None if it is not used."""
        lowered = file_column.lower()
        for name in CANONICAL_COLUMNS:
            if lowered in (alias.lower() for alias in self.aliases(name)):
                return name
        return None

    def ambiguous(self, file_columns: list[str]) -> dict[str, list[str]]:
        """Canonical columns that more than one of these file columns spells -> those file columns."""
        spelled: dict[str, list[str]] = {}
        for column in file_columns:
            name = self.canonical_name(column)
            if name:
                spelled.setdefault(name, []).append(column)
        return {name: columns for name, columns in spelled.items() if len(columns) > 1}

    def detect_version(self, file_columns: list[str]) -> str | None:
        names = {self.canonical_name(c) for c in file_columns}
        if {"pickup_zone", "dropoff_zone"} <= names:
            return CURRENT
        if {"pickup_longitude", "pickup_latitude"} <= names:
            return LEGACY
        return None

    def missing_columns(self, file_columns: list[str], version: str) -> list[str]:
        present = {self.canonical_name(c) for c in file_columns}
        return [name for name in REQUIRED[version] if name not in present]


KNOWN_SPELLINGS = Spellings()


def file_schema(file_columns: list[str]) -> T.StructType:
    """The explicit read schema for a delimited file with this header, in the file's column order."""
    fields = []
    for column in file_columns:
        name = KNOWN_SPELLINGS.canonical_name(column)
        data_type = CANONICAL_COLUMNS[name][0] if name else _MONEY if _looks_like_money(column) else T.StringType()
        fields.append(T.StructField(column, data_type, True))
    return T.StructType(fields)


def _looks_like_money(column: str) -> bool:
    lowered = column.lower()
    return lowered.endswith(("_amount", "_fee", "surcharge", "_tax", "extra")) or lowered in ("surcharge", "extra")


def generator_schema(version: str) -> T.StructType:
    """The schema the data generator writes for a TLC generation."""
    return file_schema(FILE_COLUMNS[version])
