"""Atomic outputs: a failed write leaves the previous output untouched and no temporary files."""
import os

import pytest

from spark_ml_pipeline.runtime.io import atomic_output, to_uri


def test_failed_write_keeps_previous_output(spark, tmp_path):
    target = str(tmp_path / "table")
    spark.range(5).write.parquet(target)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(spark, target) as temporary:
            spark.range(100).write.parquet(temporary)
            raise RuntimeError("boom")
    assert spark.read.parquet(target).count() == 5
    assert os.listdir(tmp_path) == ["table"]


def test_successful_write_replaces_previous_output(spark, tmp_path):
    target = str(tmp_path / "table")
    with atomic_output(spark, target) as temporary:
        spark.range(5).write.parquet(temporary)
    with atomic_output(spark, target) as temporary:
        spark.range(7).write.parquet(temporary)
    assert spark.read.parquet(target).count() == 7
    assert os.listdir(tmp_path) == ["table"]


def test_uris_keep_partition_style_names():
    assert to_uri("/data/run_date=2026-01-01") == "file:///data/run_date=2026-01-01"
    assert to_uri("hdfs://nn:8020/x") == "hdfs://nn:8020/x"
