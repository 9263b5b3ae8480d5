"""Synthetic NYC yellow-taxi trips in either TLC schema, at any scale, with a known noise floor.

Every value is a pure Spark expression of (seed, row id), so output is identical for a seed whatever
the partitioning or cluster, and generation scales like any Spark job.

**Fare formula** (the ground truth a model is judged against). With ``d`` = trip_distance (miles),
pickup hour ``h`` and weekday/weekend ``w``:

- speed(h, w) mph: weekday rush (7-9, 16-19) 11; weekday day (10-15) 14; night (22-5) 20; else 16;
  weekends 17 by day, 20 at night
- minutes = 60 d / speed + 3
- metered = 3.50 + 2.50 d + 0.35 minutes
- by rate code: 1 standard = metered; 2 JFK-Manhattan = 52.00 flat; 3 Newark = metered + 17.50;
  4 Nassau/Westchester = 1.5 metered; 5 negotiated = 1.2 metered; 6 group ride = 0.6 metered
- fare_amount = round(that + noise, 2), noise ~ Normal(0, sigma) clipped at +-3 sigma

The fare depends only on columns a model sees (trip_distance, pickup time, rate code), so the best
achievable RMSE on clean rows is the noise's standard deviation, :func:`noise_floor_rmse`.

**Dirty rows**: a share ``dirty_fraction`` of rows carries exactly one defect each, recorded in the
manifest: negative_fare, absurd_fare, zero_distance, outside_nyc, null_pickup_time,
bad_passenger_count and, in CSV, malformed_line.
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from features.arrays import literal_array
from features.geo import haversine_km
from features.taxi import index_lookup
from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.zones import AIRPORT_ZONES, UNKNOWN_ZONES, point_arrays, zones_in
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join
from spark_ml_pipeline.runtime.session import session_settings, unsorted_partitioned_write

KM_PER_MILE = 1.609344
HOUR_WEIGHTS = [3.0, 2.2, 1.6, 1.1, 0.8, 0.8, 1.8, 3.2, 4.0, 4.1, 4.0, 4.2,
                4.4, 4.4, 4.7, 4.6, 4.1, 4.9, 6.0, 6.2, 5.6, 5.5, 5.3, 4.3]
PASSENGER_WEIGHTS = {1: 0.70, 2: 0.14, 3: 0.04, 4: 0.02, 5: 0.06, 6: 0.04}
DIRTY_KINDS = ("negative_fare", "absurd_fare", "zero_distance", "outside_nyc", "null_pickup_time",
               "bad_passenger_count")
CSV_ONLY_KINDS = ("malformed_line",)
NOISE_CLIP = 3.0
MANIFEST = "_manifest.json"
ROWS_PER_FILE = 1_000_000  # Parquet files_per_month unset: files of about this many rows, one task each


@dataclass(frozen=True)
class GeneratorSpec:
    rows: int
    seed: int = 42
    tlc_schema: str = tlc.LEGACY
    output_format: str = "parquet"
    start_month: str = "2015-01"
    months: int = 3
    noise_sigma: float = 2.0
    dirty_fraction: float = 0.02
    files_per_month: int | None = None  # Parquet (None: about ROWS_PER_FILE rows each); CSV: one per month

    def dirty_kinds(self) -> tuple[str, ...]:
        return DIRTY_KINDS + (CSV_ONLY_KINDS if self.output_format == "csv" else ())

    def parquet_files_per_month(self) -> int:
        return self.files_per_month or max(1, math.ceil(self.rows / (self.months * ROWS_PER_FILE)))


@dataclass
class Manifest:
    spec: dict
    rows: int
    clean_rows: int
    dirty_rows: dict[str, int] = field(default_factory=dict)
    noise_floor_rmse: float = 0.0


def noise_floor_rmse(sigma: float, clip: float = NOISE_CLIP) -> float:
    """Standard deviation of Normal(0, sigma) clipped at +-clip*sigma: the best RMSE any model can reach."""
    phi = math.exp(-clip * clip / 2) / math.sqrt(2 * math.pi)
    tail = math.erfc(clip / math.sqrt(2))  # P(|Z| > clip)
    second_moment = (1 - tail) - 2 * clip * phi + clip * clip * tail
    return sigma * math.sqrt(second_moment)


# --- building blocks ---------------------------------------------------------------------------------

def _uniform(seed: int, stream: int) -> Column:
    """A deterministic uniform [0, 1) per (seed, row id, stream)."""
    bits = F.xxhash64(F.lit(seed), F.col("id"), F.lit(stream)).bitwiseAND(F.lit((1 << 53) - 1))
    return bits.cast("double") / F.lit(float(1 << 53))


def _normal(seed: int, stream: int) -> Column:
    """Box-Muller from two independent uniforms."""
    u1 = F.lit(1.0) - _uniform(seed, stream)  # (0, 1]
    u2 = _uniform(seed, stream + 1)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def _categorical(u: Column, weights: dict) -> Column:
    """Inverse-CDF draw from a small discrete distribution {value: weight}."""
    total = float(sum(weights.values()))
    cumulative, expr = 0.0, None
    items = list(weights.items())
    for value, weight in items[:-1]:
        cumulative += weight / total
        expr = (F.when(u < cumulative, F.lit(value)) if expr is None
                else expr.when(u < cumulative, F.lit(value)))
    return expr.otherwise(F.lit(items[-1][0])) if expr is not None else F.lit(items[-1][0])


def _pick(u: Column, values: list[int] | list[str]) -> Column:
    """A uniform draw from a list of integers (zone ids) or strings."""
    index = F.least((u * len(values)).cast("int"), F.lit(len(values) - 1)) + 1
    return F.element_at(literal_array(values, "string" if isinstance(values[0], str) else "int"), index)


def speed_mph(hour: Column, weekend: Column) -> Column:
    night = (hour >= 22) | (hour <= 5)
    weekday = (F.when(hour.between(7, 9) | hour.between(16, 19), 11.0)
               .when(hour.between(10, 15), 14.0).when(night, 20.0).otherwise(16.0))
    return F.when(weekend, F.when(night, 20.0).otherwise(17.0)).otherwise(weekday)


def expected_fare(distance: Column, hour: Column, weekend: Column, rate_code: Column) -> Column:
    """The noiseless fare of the documented formula."""
    minutes = F.lit(60.0) * distance / speed_mph(hour, weekend) + 3.0
    metered = F.lit(3.50) + 2.50 * distance + 0.35 * minutes
    return (F.when(rate_code == 2, F.lit(52.0)).when(rate_code == 3, metered + 17.50)
            .when(rate_code == 4, metered * 1.5).when(rate_code == 5, metered * 1.2)
            .when(rate_code == 6, metered * 0.6).otherwise(metered))


# --- the generator -----------------------------------------------------------------------------------

def generate_trips(spark: SparkSession, spec: GeneratorSpec) -> DataFrame:
    """Trips in the TLC file schema of ``spec.tlc_schema`` plus ``month`` and ``_defect`` columns."""
    seed = spec.seed
    u = lambda stream: _uniform(seed, stream)  # noqa: E731 - a local shorthand keeps the recipe readable
    files_per_month = spec.parquet_files_per_month()
    files = spec.months * files_per_month
    df = spark.range(0, spec.rows, 1, files)

    # When: month, day, and an hour from the city's daily rhythm. A row's month follows from its id: ids are
    # split into files as spark.range splits them into partitions (partition p starts at floor(p * rows /
    # files)), files_per_month files per month, so each task computes and writes one month's file, no shuffle.
    start = date.fromisoformat(spec.start_month + "-01")
    file_index = F.expr(f"((id + 1) * {files} - 1) div {spec.rows}")
    month_index = (file_index.cast("int") / F.lit(files_per_month)).cast("int")
    first_of_month = F.add_months(F.lit(start), month_index)
    day = F.date_add(first_of_month, (u(2) * F.dayofmonth(F.last_day(first_of_month))).cast("int"))
    hour = _categorical(u(3), dict(enumerate(HOUR_WEIGHTS)))
    df = df.withColumns({
        "_day": day, "_hour": hour,
        "pickup_datetime": F.make_timestamp_ntz(F.year(day), F.month(day), F.dayofmonth(day), hour,
                                                (u(4) * 60).cast("int"), (u(5) * 60).cast("int")),
    })
    df = df.withColumn("_weekend", F.dayofweek("_day").isin(1, 7))

    # Where: trip type, then zones, then coordinates near the zones' centroids.
    # Manhattan zones ordered along the island, so "nearby" is a small step in the list: most city
    # trips are short hops (median about 2 miles, as in the public data).
    manhattan = [z.location_id for z in sorted(zones_in("Manhattan"), key=lambda z: z.latitude)]
    outer = ([z.location_id for z in zones_in("Brooklyn")] * 9 + [z.location_id for z in zones_in("Queens")] * 7
             + [z.location_id for z in zones_in("Bronx")] * 3 + [z.location_id for z in zones_in("Staten Island")])
    trip_type = _categorical(u(6), {"jfk": 0.05, "lga": 0.04, "ewr": 0.01, "nassau": 0.003,
                                    "negotiated": 0.003, "group": 0.002, "city": 0.892})
    manhattan_array = literal_array(manhattan, "int")
    pickup_index = F.least((u(8) * len(manhattan)).cast("int"), F.lit(len(manhattan) - 1))
    nearby_index = F.least(F.greatest(pickup_index + F.round(_normal(seed, 32) * 8).cast("int"), F.lit(0)),
                           F.lit(len(manhattan) - 1))
    picked_up_in_manhattan = u(7) < 0.8
    city_pickup = F.when(picked_up_in_manhattan, F.element_at(manhattan_array, pickup_index + 1)).otherwise(
        _pick(u(8), outer))
    city_dropoff = (F.when(picked_up_in_manhattan & (u(9) < 0.8), F.element_at(manhattan_array, nearby_index + 1))
                    .when(u(9) < 0.9, _pick(u(10), manhattan)).otherwise(_pick(u(10), outer)))
    to_airport = u(11) < 0.5
    df = df.withColumn("_trip_type", trip_type)
    airport_end = F.when(F.col("_trip_type") == "jfk", AIRPORT_ZONES["JFK"]).when(
        F.col("_trip_type") == "lga", AIRPORT_ZONES["LGA"])
    is_airport_trip = F.col("_trip_type").isin("jfk", "lga")
    df = df.withColumns({
        "_pu_zone": F.when(is_airport_trip & ~to_airport, airport_end)
                     .when(is_airport_trip | (F.col("_trip_type") == "ewr"), _pick(u(8), manhattan))
                     .otherwise(city_pickup),
        "_do_zone": F.when(is_airport_trip & to_airport, airport_end)
                     .when(is_airport_trip, _pick(u(10), manhattan))
                     .when(F.col("_trip_type") == "ewr", F.lit(AIRPORT_ZONES["EWR"]))
                     .when(F.col("_trip_type") == "nassau", _pick(u(10), [z.location_id for z in zones_in("Queens")]))
                     .otherwise(city_dropoff),
    })
    # Points inside the zones' real polygons: one of each zone's points drawn uniformly inside it, plus a
    # little jitter (about 50 m) so that trips do not share a handful of exact coordinates.
    per_zone, lons, lats = point_arrays()
    jitter = 0.0005
    pickup_point = F.col("_pu_zone") * per_zone + F.least((u(20) * per_zone).cast("int"), F.lit(per_zone - 1))
    dropoff_point = F.col("_do_zone") * per_zone + F.least((u(21) * per_zone).cast("int"), F.lit(per_zone - 1))
    df = df.withColumns({
        "pickup_longitude": index_lookup(lons, pickup_point) + _normal(seed, 22) * jitter,
        "pickup_latitude": index_lookup(lats, pickup_point) + _normal(seed, 24) * jitter,
        "dropoff_longitude": index_lookup(lons, dropoff_point) + _normal(seed, 26) * jitter,
        "dropoff_latitude": index_lookup(lats, dropoff_point) + _normal(seed, 28) * jitter,
    })
    detour = F.when(F.col("_trip_type") == "nassau", 2.5).otherwise(1.2 + 0.3 * u(12))
    crow_miles = haversine_km(F.col("pickup_latitude"), F.col("pickup_longitude"),
                              F.col("dropoff_latitude"), F.col("dropoff_longitude")) / KM_PER_MILE
    df = df.withColumn("trip_distance", F.round(F.least(F.greatest(crow_miles * detour, F.lit(0.5)), F.lit(60.0)), 2))

    # Who and how: rate code, passengers, vendor, payment.
    rate_code = (F.when((F.col("_trip_type") == "jfk") & (u(13) < 0.85), 2)
                 .when(F.col("_trip_type") == "ewr", 3).when(F.col("_trip_type") == "nassau", 4)
                 .when(F.col("_trip_type") == "negotiated", 5).when(F.col("_trip_type") == "group", 6)
                 .otherwise(1))
    df = df.withColumns({
        "rate_code": rate_code,
        "passenger_count": _categorical(u(14), PASSENGER_WEIGHTS),
        "_vendor": F.when(u(15) < 0.5, 1).otherwise(2),
        "store_and_fwd_flag": F.when(u(16) < 0.01, "Y").otherwise("N"),
        "payment_type": _categorical(u(17), {1: 0.60, 2: 0.38, 3: 0.01, 4: 0.01}),
    })

    # The label: formula + clipped Gaussian noise.
    noise = F.least(F.greatest(_normal(seed, 30), F.lit(-NOISE_CLIP)), F.lit(NOISE_CLIP)) * spec.noise_sigma
    fare = expected_fare(F.col("trip_distance"), F.col("_hour"), F.col("_weekend"), F.col("rate_code"))
    df = df.withColumn("fare_amount", F.round(fare + noise, 2))
    minutes = F.lit(60.0) * F.col("trip_distance") / speed_mph(F.col("_hour"), F.col("_weekend")) + 3.0
    df = df.withColumn("dropoff_datetime", F.col("pickup_datetime") + F.make_dt_interval(
        secs=(minutes * 60 * (0.9 + 0.2 * u(18))).cast("int")))

    df = _add_money_columns(df, u)
    df = _inject_defects(df, spec, u)
    return _to_file_schema(df, spec.tlc_schema)


def _add_money_columns(df: DataFrame, u) -> DataFrame:
    night = (F.col("_hour") >= 20) | (F.col("_hour") < 6)
    tip = F.when(F.col("payment_type") == 1, F.round(F.col("fare_amount") * (0.10 + 0.15 * u(19)), 2)).otherwise(0.0)
    tolls = F.when(F.col("_trip_type").isin("jfk", "ewr", "nassau"), 6.55).otherwise(0.0)
    extra = F.when(night, 0.5).otherwise(0.0)
    return df.withColumns({
        "surcharge": extra, "extra": extra, "mta_tax": F.lit(0.5), "tip_amount": tip, "tolls_amount": tolls,
        "improvement_surcharge": F.lit(0.3), "congestion_surcharge": F.lit(2.5),
        "airport_fee": F.when(F.col("_pu_zone").isin(AIRPORT_ZONES["JFK"], AIRPORT_ZONES["LGA"]), 1.25).otherwise(0.0),
    }).withColumn("total_amount", F.round(F.col("fare_amount") + extra + 0.5 + tip + tolls + 0.3, 2))


def _inject_defects(df: DataFrame, spec: GeneratorSpec, u) -> DataFrame:
    kinds = spec.dirty_kinds()
    defect = F.when(u(40) < spec.dirty_fraction, _pick(u(41), list(kinds)))
    df = df.withColumn("_defect", defect)
    is_ = lambda kind: F.col("_defect") == kind  # noqa: E731
    outside_zone = F.lit(UNKNOWN_ZONES[0])
    return df.withColumns({
        "fare_amount": F.when(is_("negative_fare"), -F.abs(F.col("fare_amount")) - 1.0)
                        .when(is_("absurd_fare"), F.round(1000 + u(42) * 9000, 2))
                        .otherwise(F.col("fare_amount")),
        "trip_distance": F.when(is_("zero_distance"), 0.0).otherwise(F.col("trip_distance")),
        "pickup_longitude": F.when(is_("outside_nyc"), 0.0).otherwise(F.col("pickup_longitude")),
        "pickup_latitude": F.when(is_("outside_nyc"), 0.0).otherwise(F.col("pickup_latitude")),
        "_pu_zone": F.when(is_("outside_nyc"), outside_zone).otherwise(F.col("_pu_zone")),
        "pickup_datetime": F.when(is_("null_pickup_time"), F.lit(None)).otherwise(F.col("pickup_datetime")),
        "passenger_count": F.when(is_("bad_passenger_count"), _pick(u(43), [-1, 7, 8, 9]))
                            .otherwise(F.col("passenger_count")),
    })


def _to_file_schema(df: DataFrame, version: str) -> DataFrame:
    month = F.date_format(F.coalesce(F.col("pickup_datetime"), F.col("dropoff_datetime")), "yyyy-MM")
    if version == tlc.LEGACY:
        renamed = df.withColumns({"vendor_id": F.when(F.col("_vendor") == 1, "CMT").otherwise("VTS"),
                                  "payment_type": F.col("payment_type").cast("string")})
    else:
        renamed = df.withColumns({
            "VendorID": F.col("_vendor"), "tpep_pickup_datetime": F.col("pickup_datetime"),
            "tpep_dropoff_datetime": F.col("dropoff_datetime"), "RatecodeID": F.col("rate_code"),
            "PULocationID": F.col("_pu_zone"), "DOLocationID": F.col("_do_zone"),
        })
    coordinates = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
    renamed = renamed.withColumns({c: F.round(c, 6) for c in coordinates})
    columns = [F.col(c).cast(t.dataType) for c, t in zip(tlc.FILE_COLUMNS[version], tlc.generator_schema(version))]
    if version == tlc.CURRENT:  # the public files store these codes as integers
        columns = [F.col(c).cast("int") if c in ("VendorID", "payment_type") else col
                   for c, col in zip(tlc.FILE_COLUMNS[version], columns)]
    return renamed.select(*columns, month.alias("month"), "_defect", "id")


def _csv_lines(df: DataFrame, version: str) -> DataFrame:
    """Render rows as CSV text; malformed_line rows lose their last fields and get a stray token."""
    fields = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in tlc.FILE_COLUMNS[version]]
    line = F.concat_ws(",", *fields)
    broken = F.concat(F.substring_index(line, ",", 7), F.lit(",#garbled#"))
    return df.select("month", "id", F.when(F.col("_defect") == "malformed_line", broken).otherwise(line).alias("value"))


def write_trips(spark: SparkSession, spec: GeneratorSpec, output: str) -> Manifest:
    """Generate and write trips partitioned by month (``month=YYYY-MM/``), atomically, with a manifest. The
    rows are generated once: the manifest's counts are observed while they are written."""
    kinds = spec.dirty_kinds()
    observation = Observation(f"generate_{uuid.uuid4().hex}")
    trips = generate_trips(spark, spec).observe(
        observation, F.count_if(F.col("_defect").isNull()).alias("clean"),
        *[F.count_if(F.col("_defect") == kind).alias(f"dirty_{i}") for i, kind in enumerate(kinds)])
    with atomic_output(spark, output) as temporary:
        if spec.output_format == "parquet":
            # A task's rows are one month's (a trip with no pickup time is filed by its drop-off: the next month).
            with session_settings(spark, unsorted_partitioned_write(2)):
                trips.drop("_defect", "id").write.partitionBy("month").parquet(temporary)
        else:
            _write_csv(spark, trips, spec, temporary)
        counts = {key: int(value or 0) for key, value in observation.get.items()}
        manifest = Manifest(spec=asdict(spec), rows=spec.rows, clean_rows=counts["clean"],
                            dirty_rows={kind: counts[f"dirty_{i}"] for i, kind in enumerate(kinds)},
                            noise_floor_rmse=noise_floor_rmse(spec.noise_sigma))
        HadoopFS(spark).write_text(join(temporary, MANIFEST), json.dumps(asdict(manifest), indent=2))
    return manifest


def _write_csv(spark: SparkSession, layout: DataFrame, spec: GeneratorSpec, output: str) -> None:
    """One CSV file per month, header first, like the public monthly files."""
    lines = _csv_lines(layout, spec.tlc_schema)
    headers = (lines.select("month").distinct()
               .withColumns({"id": F.lit(-1).cast("long"),
                             "value": F.lit(",".join(tlc.FILE_COLUMNS[spec.tlc_schema]))}))
    (lines.unionByName(headers)
     .repartition(spec.months, "month")
     .sortWithinPartitions("month", "id")  # the header (id -1) opens each month's file
     .select("month", "value")
     .write.partitionBy("month").text(output))


def read_manifest(spark: SparkSession, output: str) -> dict:
    location = join(output, MANIFEST)
    try:
        manifest = json.loads(HadoopFS(spark).read_text(location))
        GeneratorSpec(**manifest["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{location}: not a generator manifest ({type(exc).__name__}: {exc}); delete the "
                        "directory to generate it again") from None
    return manifest
