"""The one way rows are split into train / validation / test: deterministic, independent of partitioning.

A row's place is decided by a hash of its key columns and the seed (``hash_fraction``), or by a time column
(``time``: the latest rows are the test set, the ones before them validation), never by the order Spark reads
it in. ``with_validation_flag`` marks validation rows in one frame (what the trainers read).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.config_models import SplitConfig
from spark_ml_pipeline.runtime.errors import DataError

VALIDATION_INDICATOR = "is_validation"
HELD_OUT_PART = "split"  # "test" or "validation" in Splits.held_out
HASH_BUCKETS = 10_000  # split resolution: fractions are multiples of 1 / HASH_BUCKETS


def hash_fraction(seed: int, key_columns: Sequence[str]) -> Column:
    """A number in [0, 1) that depends only on the row's key values and the seed."""
    return F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in key_columns]), F.lit(HASH_BUCKETS)) / float(HASH_BUCKETS)


@dataclass
class Splits:
    train: DataFrame
    validation: DataFrame
    test: DataFrame
    # Training and validation rows flagged in one scan of the input (no union: a trainer reads it with the
    # input's own partitions, e.g. exactly one per XGBoost worker, without a shuffle).
    flagged: DataFrame | None = None
    # Test and validation rows, HELD_OUT_PART naming which, in one scan: both scored and evaluated at once.
    held_out: DataFrame | None = None

    def train_with_indicator(self) -> DataFrame:
        """Training and validation rows in one frame, flagged (``is_validation``) for early stopping."""
        if self.flagged is not None:
            return self.flagged
        return (self.train.withColumn(VALIDATION_INDICATOR, F.lit(False))
                .unionByName(self.validation.withColumn(VALIDATION_INDICATOR, F.lit(True))))

    def test_and_validation(self) -> DataFrame:
        """Test and validation rows in one frame, ``split`` = "test" or "validation"."""
        if self.held_out is not None:
            return self.held_out
        return (self.test.withColumn(HELD_OUT_PART, F.lit("test"))
                .unionByName(self.validation.withColumn(HELD_OUT_PART, F.lit("validation"))))

    def map(self, transform: Callable[[DataFrame], DataFrame]) -> "Splits":
        """The same split with ``transform`` applied to every part."""
        def apply(frame: DataFrame | None) -> DataFrame | None:
            return transform(frame) if frame is not None else None
        return Splits(transform(self.train), transform(self.validation), transform(self.test),
                      apply(self.flagged), apply(self.held_out))

    def train_and_validation(self) -> DataFrame:
        """What a refit trains on once the validation split has chosen its settings."""
        return self.train.unionByName(self.validation)


def split_rows(df: DataFrame, config: SplitConfig, key_columns: Sequence[str] | None = None,
               test: DataFrame | None = None) -> Splits:
    """The configured split: by ``config.time_column`` when set, else by a hash of ``key_columns`` (all); with a
    fixed ``test`` set (a holdout file) every row of ``df`` trains but the validation fraction. A split left
    empty (too few rows for its fraction) is a DataError before anything is trained."""
    if test is not None:
        splits = split_with_fixed_test(df, test, config.validation_fraction, config.seed, key_columns)
    elif config.time_column:
        splits = split_by_time(df, config.time_column, config.validation_fraction, config.test_fraction)
    else:
        splits = split_by_hash(df, config.validation_fraction, config.test_fraction, config.seed, key_columns)
    wanted = {"train": splits.train, "test": splits.test}
    if config.validation_fraction > 0:
        wanted["validation"] = splits.validation
    for name, rows in wanted.items():
        if rows.isEmpty():
            raise DataError(f"split: the {name} split is empty (split.validation_fraction="
                            f"{config.validation_fraction}, split.test_fraction={config.test_fraction}): "
                            "too few valid rows; ingest more rows or change the fractions")
    return splits


def split_by_hash(df: DataFrame, validation_fraction: float, test_fraction: float, seed: int,
                  key_columns: Sequence[str] | None = None) -> Splits:
    """test = [0, test), validation = [test, test + validation), train = the rest of the hash fraction."""
    fraction = hash_fraction(seed, list(key_columns or df.columns))
    validation_end = test_fraction + validation_fraction
    return Splits(train=df.where(fraction >= validation_end),
                  validation=df.where((fraction >= test_fraction) & (fraction < validation_end)),
                  test=df.where(fraction < test_fraction),
                  flagged=df.where(fraction >= test_fraction).withColumn(VALIDATION_INDICATOR,
                                                                         fraction < validation_end),
                  held_out=df.where(fraction < validation_end).withColumn(
                      HELD_OUT_PART, F.when(fraction < test_fraction, "test").otherwise("validation")))


def split_with_fixed_test(df: DataFrame, test: DataFrame, validation_fraction: float, seed: int,
                          key_columns: Sequence[str] | None = None) -> Splits:
    """``test`` as given (a fixed holdout); validation = the hash fraction below ``validation_fraction``, train the
    rest of ``df``."""
    fraction = hash_fraction(seed, list(key_columns or df.columns))
    return Splits(train=df.where(fraction >= validation_fraction), validation=df.where(fraction < validation_fraction),
                  test=test, flagged=df.withColumn(VALIDATION_INDICATOR, fraction < validation_fraction))


def split_by_time(df: DataFrame, time_column: str, validation_fraction: float, test_fraction: float) -> Splits:
    """The latest ``test_fraction`` of rows (by ``time_column``) are the test set, the ``validation_fraction``
    before them validation: a model is judged on a period after the one it learned from."""
    if time_column not in df.columns:
        raise DataError(f"split.time_column: no column {time_column!r} (columns: {', '.join(df.columns)})")
    ts = F.col(time_column).cast("timestamp").cast("double") if dict(df.dtypes)[time_column] != "double" \
        else F.col(time_column)
    cuts = df.select(ts.alias("t")).where(F.col("t").isNotNull()).approxQuantile(
        "t", [1.0 - test_fraction - validation_fraction, 1.0 - test_fraction], 0.0001)
    if len(cuts) < 2:
        raise DataError(f"split.time_column: {time_column!r} has no non-null values to split on")
    validation_start, test_start = cuts
    return Splits(train=df.where(ts < validation_start),
                  validation=df.where((ts >= validation_start) & (ts < test_start)),
                  test=df.where(ts >= test_start),
                  flagged=df.where(ts < test_start).withColumn(VALIDATION_INDICATOR, ts >= validation_start),
                  held_out=df.where(ts >= validation_start).withColumn(
                      HELD_OUT_PART, F.when(ts >= test_start, "test").otherwise("validation")))


def with_validation_flag(df: DataFrame, fraction: float, seed: int, key_columns: Sequence[str]) -> DataFrame:
    """``is_validation`` on a hash of the key columns: the validation rows of a single training frame."""
    return df.withColumn(VALIDATION_INDICATOR, hash_fraction(seed, list(key_columns)) < fraction)
