"""Build a SparkSession from configuration.

``spark_conf`` is a pure function (config -> Spark properties) so what a configuration asks of Spark,
GPU scheduling included, is testable without a GPU; ``get_session`` applies it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig

RESOURCES = Path(__file__).resolve().parent / "resources"
LOOPBACK = "127.0.0.1"


def resolve_discovery_script(path: str) -> str:
    """GPU discovery scripts are given relative to the project root; Spark needs an absolute path."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(__file__).resolve().parents[2] / candidate
    return str(candidate)


def spark_conf(spark: SparkConfig, compute: ComputeConfig, python: str | None = None) -> dict[str, str]:
    """The Spark properties a configuration sets, in the order they are applied."""
    python = python or sys.executable
    conf = {
        "spark.master": spark.master,
        "spark.app.name": spark.app_name,
        "spark.driver.memory": spark.driver_memory,
        "spark.executor.memory": spark.executor_memory,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.session.timeZone": spark.timezone,
        "spark.sql.execution.arrow.pyspark.enabled": str(spark.arrow).lower(),
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.ui.enabled": str(spark.ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        # Parse every CSV field, selected or not, so a malformed line is always caught for quarantine.
        "spark.sql.csv.parser.columnPruning.enabled": "false",
        # Executors must run the project's interpreter, not whatever python is first on their PATH.
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={RESOURCES / 'log4j2.properties'}",
    }
    if spark.is_local:
        # Development and tests never listen beyond the loopback interface.
        conf["spark.driver.host"] = LOOPBACK
        conf["spark.driver.bindAddress"] = LOOPBACK
    if spark.executor_cores:
        conf["spark.executor.cores"] = str(spark.executor_cores)
    if spark.cores_max:
        conf["spark.cores.max"] = str(spark.cores_max)
    if compute.device == "cuda":
        conf.update({
            "spark.executor.resource.gpu.amount": str(spark.gpu.amount_per_executor),
            "spark.task.resource.gpu.amount": str(spark.gpu.amount_per_task),
            "spark.executor.resource.gpu.discoveryScript": resolve_discovery_script(spark.gpu.discovery_script),
        })
    conf.update(spark.extra)
    return conf


def submitted_conf_keys() -> set[str]:
    """Properties spark-submit already set: its flags (--master ...) win over configuration files."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        return set()
    SparkContext._ensure_initialized()  # connect to spark-submit's JVM, whose properties hold its flags
    return {key for key, _ in SparkConf().getAll()}


def get_session(spark: SparkConfig, compute: ComputeConfig):
    """Create (or return the active) SparkSession configured as ``spark`` says."""
    conf = spark_conf(spark, compute)
    submitted = submitted_conf_keys()
    os.environ.setdefault("PYSPARK_PYTHON", conf["spark.pyspark.python"])
    if spark.is_local:
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    builder = SparkSession.builder
    for key, value in conf.items():
        if key not in submitted:
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(spark.log_level)
    return session
