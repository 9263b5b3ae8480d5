"""Test and validation rows evaluated in one pass: the same rows and metrics as the two splits taken apart."""
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.config_models import SplitConfig
from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.train.metrics import regression_metrics, regression_metrics_by
from spark_ml_pipeline.train.splits import HELD_OUT_PART, split_rows


@pytest.fixture(scope="module")
def rows(spark):
    return (spark.range(2000).withColumn("label", (F.col("id") % 17).cast("double"))
            .withColumn("prediction", F.col("label") + (F.col("id") % 5 - 2) / 10.0)
            .withColumn("at", F.col("id").cast("double")))


@pytest.mark.parametrize("split", [SplitConfig(seed=3), SplitConfig(time_column="at")], ids=["hash", "time"])
def test_held_out_rows_are_the_test_and_validation_splits_and_score_alike(rows, split):
    splits = split_rows(rows, split, key_columns=["id"])
    held_out = splits.test_and_validation()
    for part, alone in (("test", splits.test), ("validation", splits.validation)):
        assert_df_equality(held_out.where(F.col(HELD_OUT_PART) == part).drop(HELD_OUT_PART), alone,
                           ignore_row_order=True)
    together = regression_metrics_by(held_out, "label", HELD_OUT_PART, ["test", "validation"])
    assert together["test"] == pytest.approx(regression_metrics(splits.test, "label"))
    assert together["validation"] == pytest.approx(regression_metrics(splits.validation, "label"))
    assert together["test"]["n"] + together["validation"]["n"] + splits.train.count() == rows.count()


def test_an_empty_part_is_a_data_error_naming_it(rows):
    only_test = rows.withColumn(HELD_OUT_PART, F.lit("test"))
    with pytest.raises(DataError, match="empty validation split"):
        regression_metrics_by(only_test, "label", HELD_OUT_PART, ["test", "validation"])
