"""The ``taxi_fare`` pipeline's data stages: generate, ingest (validate/quarantine) and featurize.

Each stage is a function of (spark, config) that reads its inputs from and commits its outputs to the store, so
stages run alone (``jobs/<stage>.py``) or chained (``jobs/run_pipeline.py``, :mod:`pipelines.taxi_fare.train`).
This module imports neither XGBoost nor MLflow: a scheduled ingest starts without them.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterator

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from features.taxi import LABEL, feature_columns, feature_stages
from pipelines.taxi_fare import generator, zones
from pipelines.taxi_fare import ingest as tlc_ingest
from pipelines.taxi_fare.config import (FEATURES_COLUMN, TaxiFareConfig, features_location, generated_location,
                                        generator_spec, ingest_location, input_format, raw_location,
                                        validation_rules)
from spark_ml_pipeline.ingest import ledger
from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.quarantine import (IngestInput, IngestStats, commit, read_stats, read_valid,
                                                 require_ingested, require_mostly_valid)
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join, to_uri


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
        return manifest_if_any(spark, config.ingest.input)
    existing = manifest_if_any(spark, generated_location(config))
    if existing and existing["spec"] == asdict(generator_spec(config)):
        return existing
    return asdict(generate(spark, config))


def manifest_if_any(spark, location: str) -> dict | None:
    if not HadoopFS(spark).exists(join(location, generator.MANIFEST)):
        return None
    return generator.read_manifest(spark, location)


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
