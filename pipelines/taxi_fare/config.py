"""The ``taxi_fare`` pipeline's configuration and where its stages read and write in the store.

Finding the pipeline and validating a conf file import this module and not the stages' (the package's
``__init__`` defers them): neither XGBoost, MLflow nor TensorFlow.
"""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, PositiveInt, field_validator

from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.generator import GeneratorSpec
from pipelines.taxi_fare.ingest import ValidationRules
from spark_ml_pipeline.runtime.config_models import (IngestPolicy, PipelineConfigBase, Section, SplitConfig,
                                                     XGBoostConfig, run_date)

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
    files_per_month: Optional[PositiveInt] = None  # Parquet; None: files of about a million rows, one task each
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


class KerasMLPSection(Section):
    """The MLP (``family: keras_mlp``): ``layers`` hidden layers of ``units`` each, Adam, MSE loss. Its training
    fields are training settings of the same names (:meth:`KerasTrainingSettings.from_section`); the others keep
    their defaults."""

    units: PositiveInt = 128
    layers: int = Field(2, ge=1, le=6)
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: PositiveInt = 512
    epochs: PositiveInt = 10
    early_stopping_patience: int = Field(3, ge=0)
    shuffle_buffer: PositiveInt = 20_000


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


# --- locations and derived settings ------------------------------------------------------------------

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


def generator_spec(config: TaxiFareConfig) -> GeneratorSpec:
    g = config.generate
    return GeneratorSpec(rows=g.rows, seed=g.seed, tlc_schema=g.tlc_schema, output_format=g.format,
                                   start_month=g.start_month, months=g.months, noise_sigma=g.noise_sigma,
                                   dirty_fraction=g.dirty_fraction, files_per_month=g.files_per_month)


def validation_rules(config: TaxiFareConfig) -> ValidationRules:
    """The ranges a trip must fall in, from ``ingest.*`` (the ingest stage and scoring judge trips alike)."""
    i = config.ingest
    return ValidationRules(fare_max=i.fare_max, passenger_max=i.passenger_max,
                                      distance_max_miles=i.distance_max_miles,
                                      pickup_in_file_month=i.pickup_in_file_month)


