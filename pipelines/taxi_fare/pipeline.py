"""The ``taxi_fare`` pipeline: TLC trips -> validate/quarantine -> features -> distributed XGBoost -> store.

Each stage is a function of (spark, config) that reads its inputs from and commits its outputs to the
store, so stages run alone (``jobs/<stage>.py``) or chained (``jobs/run_pipeline.py``).
"""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Literal, Optional

from pydantic import Field, PositiveInt, field_validator
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from features.taxi import LABEL, feature_columns, feature_stages
from pipelines.taxi_fare import generator, tlc, zones
from pipelines.taxi_fare import ingest as tlc_ingest
from pipelines.taxi_fare.keras_mlp import KerasMLPSection
from spark_ml_pipeline.ingest import ledger
from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.quarantine import (IngestInput, IngestStats, citing, commit, read_stats, read_valid,
                                                 require_ingested, require_mostly_valid)
from spark_ml_pipeline.runs.xgboost_run import XGBoostData, XGBoostResult, train_and_record
from spark_ml_pipeline.runs.xgboost_run import summary as xgboost_summary
from spark_ml_pipeline.runtime.config_models import (IngestPolicy, PipelineConfigBase, Section, SplitConfig,
                                                     XGBoostConfig, run_date)
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join, to_uri
from spark_ml_pipeline.train.splits import Splits, split_rows

NAME = "taxi_fare"
FEATURES_COLUMN = "features"


# --- configuration -----------------------------------------------------------------------------------

class GenerateSection(Section):
    rows: PositiveInt = 200_000
    seed: int = 42
    tlc_schema: Literal["legacy", "current"] = "legacy"
    format: Literal["parquet", "csv"] = "parquet"
    start_month: str = "2015-01"
    months: int = Field(3, ge=1, le=120)
    # Capped so that no clean fare can be pushed to <= 0 by the (3-sigma clipped) noise.
    noise_sigma: float = Field(2.0, gt=0, le=2.1)
    dirty_fraction: float = Field(0.02, ge=0, le=0.5)
    files_per_month: PositiveInt = 1
    output: Optional[str] = None  # default: <store>/data/taxi_fare/raw

    @field_validator("start_month")
    @classmethod
    def _year_month(cls, value: str) -> str:
        if not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", value):
            raise ValueError("expected YYYY-MM")
        return value


class IngestSection(IngestPolicy):
    input: Optional[str] = None  # path, URI or glob of TLC files; default: the generator's output
    format: Optional[Literal["parquet", "csv"]] = None  # default: generate.format
    tlc_schema: Literal["auto", "legacy", "current"] = "auto"
    fare_max: float = Field(500.0, gt=0)
    passenger_max: int = Field(6, ge=1)
    distance_max_miles: float = Field(100.0, gt=0)
    # A file whose name holds a month (yellow_tripdata_2019-03.csv) must hold trips picked up in that month.
    pickup_in_file_month: bool = True
    # The files' own column names that no known spelling covers: their name -> canonical name (tlc.py).
    columns: dict[str, str] = {}
    # Only files not ingested by another run date (or changed since: size/mtime), per the ledger in the store.
    incremental: bool = False

    @field_validator("columns")
    @classmethod
    def _one_canonical_column_each(cls, mapping: dict[str, str]) -> dict[str, str]:
        mapped_to: dict[str, str] = {}  # canonical name -> their name
        for theirs, canonical in mapping.items():
            if canonical not in tlc.CANONICAL_COLUMNS:
                raise ValueError(f"{theirs}: unknown canonical column {canonical!r} (one of "
                                 f"{', '.join(tlc.CANONICAL_COLUMNS)})")
            if canonical in mapped_to:
                raise ValueError(f"ambiguous: {mapped_to[canonical]!r} and {theirs!r} both map to {canonical!r}")
            if theirs.lower() in {name.lower() for name in mapped_to.values()}:
                raise ValueError(f"ambiguous: {theirs!r} is mapped twice (names are matched ignoring case)")
            mapped_to[canonical] = theirs
        return mapping

    def spellings(self) -> tlc.Spellings:
        return tlc.Spellings.of(self.columns)


class FeaturesSection(Section):
    categories: list[str] = ["vendor_id", "rate_code", "store_and_fwd_flag"]
    hash_buckets: int = Field(0, ge=0)
    airport_radius_km: float = Field(2.0, gt=0)


class TaxiFareConfig(PipelineConfigBase):
    pipeline: str = NAME
    kind: Literal["taxi_fare"] = NAME
    generate: GenerateSection = GenerateSection()
    ingest: IngestSection = IngestSection()
    features: FeaturesSection = FeaturesSection()
    model: XGBoostConfig = XGBoostConfig()
    # The model family: the pipeline trains XGBoost; a search may also try the Keras MLP (tune.space.family).
    family: Literal["xgboost", "keras_mlp"] = "xgboost"
    keras: KerasMLPSection = KerasMLPSection()
    split: SplitConfig = SplitConfig()


# --- locations ---------------------------------------------------------------------------------------

def generated_location(config: TaxiFareConfig) -> str:
    return config.generate.output or config.store.data(config.pipeline, "raw")


def raw_location(config: TaxiFareConfig) -> str:
    return config.ingest.input or generated_location(config)


def input_format(config: TaxiFareConfig) -> str:
    return config.ingest.format or config.generate.format


def ingest_location(config: TaxiFareConfig) -> str:
    return config.store.data(config.pipeline, "ingest", f"run_date={run_date(config)}")


def features_location(config: TaxiFareConfig) -> str:
    return config.store.data(config.pipeline, "features", f"run_date={run_date(config)}")


def generator_spec(config: TaxiFareConfig) -> generator.GeneratorSpec:
    g = config.generate
    return generator.GeneratorSpec(rows=g.rows, seed=g.seed, tlc_schema=g.tlc_schema, output_format=g.format,
                                   start_month=g.start_month, months=g.months, noise_sigma=g.noise_sigma,
                                   dirty_fraction=g.dirty_fraction, files_per_month=g.files_per_month)


def taxi_feature_stages(config: TaxiFareConfig, assemble_into: str | None = FEATURES_COLUMN) -> list:
    """The feature stages, with the zone table and airports they look up saved inside them."""
    f = config.features
    return feature_stages(zones.centroid_arrays(), zones.airport_coordinates(), categories=f.categories,
                          num_buckets=f.hash_buckets, airport_radius_km=f.airport_radius_km,
                          assemble_into=assemble_into)


# --- stages ------------------------------------------------------------------------------------------

def generate(spark, config: TaxiFareConfig) -> generator.Manifest:
    return generator.write_trips(spark, generator_spec(config), generated_location(config))


def ensure_generated(spark, config: TaxiFareConfig) -> dict | None:
    """Generate the synthetic input unless it already exists with the same spec (idempotent reruns).

    Returns the generator manifest, or None when the pipeline reads user-supplied files."""
    if config.ingest.input:
        return _manifest_if_any(spark, config.ingest.input)
    existing = _manifest_if_any(spark, generated_location(config))
    if existing and existing["spec"] == asdict(generator_spec(config)):
        return existing
    return asdict(generate(spark, config))


def _manifest_if_any(spark, location: str) -> dict | None:
    if not HadoopFS(spark).exists(join(location, generator.MANIFEST)):
        return None
    return generator.read_manifest(spark, location)


def validation_rules(config: TaxiFareConfig) -> tlc_ingest.ValidationRules:
    """The ranges a trip must fall in, from ``ingest.*`` (the ingest stage and scoring judge trips alike)."""
    i = config.ingest
    return tlc_ingest.ValidationRules(fare_max=i.fare_max, passenger_max=i.passenger_max,
                                      distance_max_miles=i.distance_max_miles,
                                      pickup_in_file_month=i.pickup_in_file_month)


@dataclass
class NothingToIngest:
    """An incremental ingest that found no new or changed file: not an error, nothing written."""

    input: str
    files_seen: int
    ledger: str

    def __str__(self) -> str:
        return (f"nothing to ingest: all {self.files_seen} file(s) in {self.input} are in the ledger "
                f"{self.ledger} unchanged; nothing written")


def trips_input(spark, config: TaxiFareConfig, files: list | None = None) -> IngestInput:
    """The input trips (or only ``files`` of them) as the ingest stage reads, tags and judges them."""
    i = config.ingest
    return tlc_ingest.trips_input(spark, raw_location(config), input_format(config), i.tlc_schema,
                                  validation_rules(config), files, on_unreadable_file=i.on_unreadable_file,
                                  duplicates=i.duplicates, spellings=i.spellings(),
                                  max_quarantine_fraction=i.max_quarantine_fraction,
                                  key="ingest.input" if i.input else "generate.output")


def commit_trips(spark, config: TaxiFareConfig, trips: IngestInput) -> IngestStats:
    return commit(spark, trips.tagged, trips.files, ingest_location(config), source=trips.source,
                  input_format=trips.input_format, on_unreadable_file=trips.on_unreadable_file)


def ingest(spark, config: TaxiFareConfig) -> IngestStats | NothingToIngest:
    """Validate the input files and commit this run date's ``valid`` + ``quarantine``; with
    ``ingest.incremental`` only the files the ledger does not list unchanged (another date ingested them)."""
    if not config.ingest.incremental:
        trips = trips_input(spark, config)
        stats = commit_trips(spark, config, trips)
        require_mostly_valid(spark, ingest_location(config), stats, trips.max_quarantine_fraction)
        return stats
    source, date = to_uri(raw_location(config)), run_date(config)
    ledger_dir = ledger.ledger_location(config.store.data(config.pipeline, "ingest"))
    files = list_input_files(spark, source)
    new = ledger.new_or_changed(files, ledger.read_ledger(spark, ledger_dir, exclude_run_date=date))
    if not new:
        return NothingToIngest(input=source, files_seen=len(files), ledger=ledger_dir)
    trips = trips_input(spark, config, files=new)
    stats = commit_trips(spark, config, trips)
    # After the commit (a crash in between re-ingests on rerun); a skipped unreadable file is not recorded, so
    # the next run tries it again.
    ledger.record(spark, ledger_dir, date, stats.input_files)
    require_mostly_valid(spark, ingest_location(config), stats, trips.max_quarantine_fraction)
    return stats


@contextlib.contextmanager
def ingest_check(spark, config: TaxiFareConfig) -> Iterator[list[IngestInput]]:
    """What ``jobs.ingest --check`` samples: the input trips as the ingest reads them (all of the input's files,
    whatever the ledger of an incremental ingest lists)."""
    yield [trips_input(spark, config)]


def valid_trips(spark, config: TaxiFareConfig) -> tuple[DataFrame, IngestStats]:
    location = ingest_location(config)
    require_ingested(spark, location, f"run date {run_date(config)}")
    return read_valid(spark, location), read_stats(spark, location)


def featurize(spark, config: TaxiFareConfig) -> str:
    """Write the feature table (features + label) of this run date; returns its location."""
    trips, _ = valid_trips(spark, config)
    model = PipelineModel(taxi_feature_stages(config, assemble_into=None))
    columns = [*feature_columns(config.features.categories), LABEL]
    output = features_location(config)
    with atomic_output(spark, output) as temporary:
        model.transform(trips).select(*columns).write.parquet(temporary)
    return output


def split_trips(spark, config: TaxiFareConfig) -> tuple[Splits, IngestStats]:
    trips, stats = valid_trips(spark, config)
    with citing(stats):
        # Split on the trip's own values, not on where its file lies: the same trips split alike in any store.
        return split_rows(trips, config.split, key_columns=tlc.CANONICAL_ORDER), stats


def training_data(spark, config: TaxiFareConfig, manifest: dict | None = None) -> XGBoostData:
    """This run date's valid trips, split, with the feature stages; the generator's noise floor when known."""
    splits, stats = split_trips(spark, config)
    if manifest is None:
        manifest = _manifest_if_any(spark, stats.input)
    return XGBoostData(splits=splits, feature_stages=taxi_feature_stages(config, assemble_into=None), label=LABEL,
                       features=feature_columns(config.features.categories), ingest_stats=stats,
                       noise_floor_rmse=manifest["noise_floor_rmse"] if manifest else None)


def train(spark, config: TaxiFareConfig, manifest: dict | None = None) -> XGBoostResult:
    """Fit features + XGBoost on train (early stopping on validation), evaluate on test, record it all."""
    if config.family != "xgboost":
        raise ConfigError(f"family={config.family}: the taxi_fare pipeline trains XGBoost; the Keras MLP is a "
                          "family of its search (python -m jobs.tune taxi_fare), whose refit is registered")
    data = training_data(spark, config, manifest)
    return train_and_record(spark, config, data, ("model", "features", "split", "generate", "ingest", "compute"),
                            lineage={"tlc_schema": data.ingest_stats.schema})


def run(spark, config: TaxiFareConfig) -> XGBoostResult | NothingToIngest:
    """The whole pipeline: (generate) -> ingest -> features + XGBoost -> store. An incremental run that finds
    no new file trains nothing (a scheduled run on a day without data is not a failure)."""
    started = time.time()
    manifest = ensure_generated(spark, config)
    generated = time.time()
    ingested = ingest(spark, config)
    if isinstance(ingested, NothingToIngest):
        return ingested
    ingest_done = time.time()
    result = train(spark, config, manifest)
    result.stage_seconds = {"generate": generated - started, "ingest": ingest_done - generated,
                            **result.stage_seconds}
    result.seconds = time.time() - started  # the whole run, not the train stage alone
    return result


def summary(result: XGBoostResult | NothingToIngest, config: TaxiFareConfig) -> str:
    if isinstance(result, NothingToIngest):
        return f"{config.pipeline} · run date {run_date(config)} · {result}"
    return xgboost_summary(result, config)
