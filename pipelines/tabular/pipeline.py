"""The ``tabular`` pipeline: any tabular data set -> validate/quarantine -> declared features -> XGBoost -> store.

``ingest`` reads the input as the conf file declares it and commits valid rows + quarantine; ``train`` splits
the valid rows, fits the feature stages and the XGBoost regressor / classifier (early stopping on the
validation rows), measures the test rows against a trivial baseline and records everything with the
:class:`RunRecorder`; ``run`` chains both. String (or numeric) class labels are indexed on the training rows
and an ``IndexToString`` stage at the end of the model turns predictions back into the original labels.
"""
from __future__ import annotations

import time

from pyspark.ml import Pipeline
from pyspark.ml.feature import IndexToString, StringIndexer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.tabular import tabular_feature_stages
from pipelines.tabular.config import TabularConfig
from pipelines.tabular.ingest import holdout_location, ingest, ingest_location
from spark_ml_pipeline.ingest.quarantine import IngestStats, citing, read_stats, read_valid, require_ingested
from spark_ml_pipeline.runs.xgboost_run import PREDICTION, XGBoostData, XGBoostResult, train_and_record
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.train.splits import Splits, split_rows

FEATURES_COLUMN = "features"


def is_classification(config: TabularConfig) -> bool:
    return config.task != "regression"


def label_index_column(config: TabularConfig) -> str:
    return f"{config.label}_index"


def predicted_label_column(config: TabularConfig) -> str:
    """The original-label prediction a classifier's model adds (e.g. ``predicted_species``)."""
    return f"predicted_{config.label}"


def key_columns(config: TabularConfig) -> list[str]:
    return list(config.keys or config.columns)


def feature_stages(config: TabularConfig) -> list:
    """The declared feature stages, unfitted (the category indexers learn from training rows)."""
    f = config.features
    return tabular_feature_stages(
        numeric=f.numeric,
        indexed=[c for c, spec in f.categorical.items() if spec.encoding == "index"],
        hashed={c: spec.buckets for c, spec in f.categorical.items() if spec.encoding == "hash"},
        datetimes=f.datetime,
        distances={name: spec.columns() for name, spec in f.distances.items()},
        assemble_into=FEATURES_COLUMN)


# --- training data -----------------------------------------------------------------------------------

def valid_rows(spark: SparkSession, config: TabularConfig) -> tuple[DataFrame, IngestStats]:
    location = ingest_location(config)
    require_ingested(spark, location, f"{config.pipeline} run date {run_date(config)}")
    return read_valid(spark, location), read_stats(spark, location)


def training_data(spark: SparkSession, config: TabularConfig) -> XGBoostData:
    """The committed valid rows of this run date, split; labels indexed and features fitted on train rows."""
    rows, stats = valid_rows(spark, config)
    test, test_stats = None, None
    if config.input.test_uri:
        location = holdout_location(config)
        require_ingested(spark, location, f"{config.pipeline} input.test_uri, run date {run_date(config)}")
        test, test_stats = read_valid(spark, location).select(*config.columns), read_stats(spark, location)
        if test.isEmpty():
            raise DataError(f"input.test_uri: {config.input.test_uri}: no valid rows to test on (see the quarantine "
                            f"in {location})")
    with citing(stats):
        splits = split_rows(rows.select(*config.columns), config.split, key_columns(config), test)
    label, classes, tail = config.label, None, []
    if is_classification(config):
        with citing(stats):
            splits, classes = index_labels(splits, config)
        label = label_index_column(config)
        tail = [IndexToString(inputCol=PREDICTION, outputCol=predicted_label_column(config), labels=classes)]
    fitted = Pipeline(stages=feature_stages(config)).fit(splits.train)
    return XGBoostData(splits=splits, feature_stages=list(fitted.stages), label=label, task=config.task,
                       features=FEATURES_COLUMN, label_name=config.label, classes=classes, tail=tail,
                       ingest_stats=stats, test_ingest_stats=test_stats)


def index_labels(splits: Splits, config: TabularConfig) -> tuple[Splits, list[str]]:
    """Class labels -> 0..k-1 (alphabetical: for 0/1 or no/yes the positive class is 1), learnt on train rows."""
    label = config.label
    indexer = StringIndexer(inputCol=label, outputCol=label_index_column(config), stringOrderType="alphabetAsc",
                            handleInvalid="error").fit(splits.train)
    classes = list(indexer.labels)
    unseen = sorted({str(r[0]) for r in splits.validation.unionByName(splits.test).select(
        F.col(label).cast("string")).distinct().collect()} - set(classes))
    if unseen:
        raise DataError(f"label {label!r}: class(es) {', '.join(unseen)} occur in validation/test rows but not in "
                        "the training rows; more rows of them, or another split, are needed")
    if config.task == "binary" and len(classes) != 2:
        raise DataError(f"label {label!r}: task binary needs 2 classes in the training rows, found {len(classes)} "
                        f"({', '.join(classes[:10])})")
    if config.task == "multiclass" and len(classes) < 3:
        raise DataError(f"label {label!r}: task multiclass found {len(classes)} class(es) in the training rows "
                        f"({', '.join(classes)}); with two classes use task: binary")
    return splits.map(indexer.transform), classes


# --- stages ------------------------------------------------------------------------------------------

def train(spark: SparkSession, config: TabularConfig) -> XGBoostResult:
    """Fit features + XGBoost on train (early stopping on validation), evaluate on test, record it all."""
    data = training_data(spark, config)
    lineage = {"input_uri": config.input.uri, **({"test_uri": config.input.test_uri} if config.input.test_uri else {})}
    return train_and_record(spark, config, data, config_sections=(
        "input", "schema", "formats", "label", "task", "keys", "features", "validation", "split", "model", "compute"),
        lineage=lineage)


def run(spark: SparkSession, config: TabularConfig) -> XGBoostResult:
    """The whole pipeline: ingest (validate, quarantine) -> features + XGBoost -> store."""
    started = time.time()
    ingest(spark, config)
    ingested = time.time()
    result = train(spark, config)
    result.stage_seconds = {"ingest": ingested - started, **result.stage_seconds}
    result.seconds = time.time() - started  # the whole run, not the train stage alone
    return result
