"""The ``taxi_fare`` pipeline's train stage, and the whole run: (generate) -> ingest -> features + distributed
XGBoost -> store. The data stages are :mod:`pipelines.taxi_fare.pipeline`'s."""
from __future__ import annotations

import time

from features.taxi import LABEL, feature_columns
from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.config import TaxiFareConfig
from pipelines.taxi_fare.pipeline import (NothingToIngest, ensure_generated, ingest, manifest_if_any,
                                          taxi_feature_stages, valid_trips)
from spark_ml_pipeline.ingest.quarantine import IngestStats, citing
from spark_ml_pipeline.runs.xgboost_run import XGBoostData, XGBoostResult, train_and_record
from spark_ml_pipeline.runs.xgboost_run import summary as xgboost_summary
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.train.splits import Splits, split_rows


def split_trips(spark, config: TaxiFareConfig) -> tuple[Splits, IngestStats]:
    trips, stats = valid_trips(spark, config)
    with citing(stats):
        # Split on the trip's own values, not on where its file lies: the same trips split alike in any store.
        return split_rows(trips, config.split, key_columns=tlc.CANONICAL_ORDER), stats


def training_data(spark, config: TaxiFareConfig, manifest: dict | None = None) -> XGBoostData:
    """This run date's valid trips, split, with the feature stages; the generator's noise floor when known."""
    splits, stats = split_trips(spark, config)
    if manifest is None:
        manifest = manifest_if_any(spark, stats.input)
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
