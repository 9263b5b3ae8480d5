"""One SparkSession for the whole test session (local[2], loopback, quiet), and small shared data sets."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def copy_conf():
    """``copy_conf(target)``: a writable copy of conf/ at ``target`` (base.yaml, env/, pipelines/)."""
    def copy(target: Path) -> Path:
        shutil.copytree(ROOT / "conf", target)
        return Path(target)
    return copy


@pytest.fixture(scope="session")
def spark():
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    session = get_session(SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="3g",
                                      app_name="spark-ml-pipeline-tests"), ComputeConfig())
    yield session
    session.stop()


def _generated(spark, tmp_path_factory, name, **spec):
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips

    output = str(tmp_path_factory.mktemp(name) / "raw")
    return output, write_trips(spark, GeneratorSpec(rows=6000, dirty_fraction=0.1, months=2, **spec), output)


@pytest.fixture(scope="session")
def legacy_csv(spark, tmp_path_factory):
    """Legacy-schema CSV trips with every kind of dirty row, malformed lines included."""
    return _generated(spark, tmp_path_factory, "legacy_csv", seed=3, tlc_schema="legacy", output_format="csv")


@pytest.fixture(scope="session")
def current_parquet(spark, tmp_path_factory):
    """Current-schema (taxi zone) Parquet trips."""
    return _generated(spark, tmp_path_factory, "current_parquet", seed=5, tlc_schema="current",
                      output_format="parquet")
