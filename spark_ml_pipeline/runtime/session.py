"""Build a SparkSession from configuration.

``spark_conf`` is a pure function (config -> Spark properties) so what a configuration asks of Spark,
GPU scheduling included, is testable without a GPU; ``get_session`` applies it. ``resolve_device`` checks,
before Spark starts, that ``compute.device=cuda`` can be honoured in local mode (a GPU is visible on this
host) and fails fast, or falls back to the CPU when ``compute.allow_cpu_fallback`` says so.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from spark_ml_pipeline.runtime.class_archive import class_archive_options
from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.verbosity import environment as verbosity_environment

RESOURCES = Path(__file__).resolve().parent / "resources"
LOOPBACK = "127.0.0.1"
LOCAL_THREADS = re.compile(r"^local(\[[^\]]*\])?$")  # local, local[N], local[*], local[N,F]: no executors


def resolve_discovery_script(path: str) -> str:
    """GPU discovery scripts are given relative to the project root; Spark needs an absolute path."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(__file__).resolve().parents[2] / candidate
    return str(candidate)


class GpuUnavailableError(ConfigError):
    """``compute.device=cuda`` but no GPU is visible where the run's tasks would execute."""


def discover_gpus(discovery_script: str, timeout: float = 90) -> list[str]:
    """The GPU addresses the discovery script (the one Spark runs) reports on this host.

    Raises :class:`GpuUnavailableError` (one line: what was run and what it said) when it fails, lists no
    GPU or prints something that is not Spark's resource JSON."""
    script = resolve_discovery_script(discovery_script)
    try:
        done = subprocess.run([script], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuUnavailableError(f"GPU discovery script {script} could not run: {exc}") from None
    said = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
    if done.returncode != 0:
        raise GpuUnavailableError(f"{script} exited {done.returncode}: {said or 'no message'}")
    try:
        resource = json.loads(done.stdout)
        addresses = resource["addresses"]
        if resource["name"] != "gpu" or not isinstance(addresses, list):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise GpuUnavailableError(f"{script} printed {done.stdout.strip()[:200]!r}, "
                                  'not {"name": "gpu", "addresses": [...]}') from None
    addresses = [str(a) for a in addresses if str(a).strip()]
    if not addresses:
        raise GpuUnavailableError(f"{script} lists no GPU address")
    return addresses


def resolve_device(compute: ComputeConfig, spark: SparkConfig) -> str:
    """The device the run uses: ``compute.device``, checked before Spark starts.

    ``cuda`` in local mode needs a GPU on this host, found with the same discovery script Spark runs
    (``spark.gpu.discovery_script``, i.e. ``nvidia-smi``). None: :class:`GpuUnavailableError` naming
    ``compute.device`` and what was checked, or, with ``compute.allow_cpu_fallback``, one warning line on
    stderr and ``cpu``. On a cluster the executors' hosts hold the GPUs, not necessarily the driver's: Spark's
    resource scheduling checks them there (the same script as ``spark.executor.resource.gpu.discoveryScript``).
    """
    if compute.device != "cuda" or not spark.is_local:
        return compute.device
    try:
        discover_gpus(spark.gpu.discovery_script)
        return "cuda"
    except GpuUnavailableError as exc:
        problem = (f"compute.device=cuda but no GPU is visible on this host "
                   f"(local mode, spark.master={spark.master}): {exc}")
        if not compute.allow_cpu_fallback:
            raise GpuUnavailableError(f"{problem}. Set compute.device=cpu, or compute.allow_cpu_fallback=true "
                                      "to run on the CPU") from None
        print(f"warning: {problem}; running on the CPU (compute.allow_cpu_fallback=true)", file=sys.stderr)
        return "cpu"


def shows_console_progress(spark: SparkConfig, terminal: bool | None = None) -> bool:
    """Whether Spark draws its stage progress bar: ``auto`` when stderr is a terminal (a person is watching)."""
    if spark.console_progress != "auto":
        return spark.console_progress == "on"
    return sys.stderr.isatty() if terminal is None else terminal


# Whole-stage code generation fuses a stage's expressions into one Java method; the taxi features (zone lookups,
# four haversines) behind the split's filter make it larger than the 8,000 bytes of bytecode HotSpot compiles by
# default, and the stage then runs interpreted: 4.8x slower at 1M trips (bench/features_codegen.py).
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


def java_options(class_archive: list[str]) -> dict[str, str]:
    """The driver's and executors' JVM options: Spark's log configuration (the driver's), huge methods compiled,
    and ``class_archive`` (:func:`spark_ml_pipeline.runtime.class_archive.class_archive_options`). Executors on
    this machine's cluster map the same archive; on other hosts, where the file is not, they start without it.
    scripts/submit.sh passes the same options to spark-submit."""
    return {
        "spark.driver.extraJavaOptions": " ".join([f"-Dlog4j2.configurationFile={RESOURCES / 'log4j2.properties'}",
                                                   COMPILE_HUGE_METHODS, *class_archive]),
        "spark.executor.extraJavaOptions": " ".join([COMPILE_HUGE_METHODS, *class_archive]),
    }


def spark_conf(spark: SparkConfig, compute: ComputeConfig, python: str | None = None,
               terminal: bool | None = None) -> dict[str, str]:
    """The Spark properties a configuration sets, in the order they are applied (``terminal``: whether stderr
    is one; default: ask it)."""
    python = python or sys.executable
    class_archive = class_archive_options() if spark.class_archive else []
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
        "spark.ui.showConsoleProgress": str(shows_console_progress(spark, terminal)).lower(),
        # Parse every CSV field, selected or not, so a malformed line is always caught for quarantine.
        "spark.sql.csv.parser.columnPruning.enabled": "false",
        # Executors must run the project's interpreter, not whatever python is first on their PATH.
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        **java_options(class_archive),
    }
    if spark.is_local:
        # Development and tests never listen beyond the loopback interface.
        conf["spark.driver.host"] = LOOPBACK
        conf["spark.driver.bindAddress"] = LOOPBACK
        # An XGBoost fit's input streams to the driver, the one machine there is (WorkerLayout.in_driver); the
        # cap on task results (1g) guards a cluster's driver against a stray collect, here it would cap the data.
        conf["spark.driver.maxResultSize"] = "0"
    if spark.executor_cores:
        conf["spark.executor.cores"] = str(spark.executor_cores)
    if spark.cores_max:
        conf["spark.cores.max"] = str(spark.cores_max)
    if compute.device == "cuda" and not LOCAL_THREADS.match(spark.master):
        # Spark schedules GPUs on executors (standalone, local-cluster, YARN, k8s); plain local mode has none
        # and a task GPU amount there leaves tasks unscheduled. In local mode XGBoost uses GPU i for worker i
        # and each Horovod rank its local-rank GPU; resolve_device checked that this host has a GPU.
        conf.update({
            "spark.executor.resource.gpu.amount": str(spark.gpu.amount_per_executor),
            "spark.task.resource.gpu.amount": str(spark.gpu.amount_per_task),
            "spark.executor.resource.gpu.discoveryScript": resolve_discovery_script(spark.gpu.discovery_script),
        })
    # Executors' Python workers (they may load TensorFlow) keep to the run's verbosity (runtime/verbosity.py).
    conf.update({f"spark.executorEnv.{key}": value for key, value in verbosity_environment().items()})
    conf.update(spark.extra)
    return conf


@contextlib.contextmanager
def session_settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """SQL settings for the jobs planned and run inside the block; the session's own values back after it."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def unsorted_partitioned_write(writers: int) -> dict[str, str]:
    """Settings for a partitioned write whose tasks each hold rows of at most ``writers`` partition values: one
    open file per value, no sort (Spark's planned write sorts every task's rows by the partition columns)."""
    return {"spark.sql.optimizer.plannedWrite.enabled": "false",
            "spark.sql.maxConcurrentOutputFileWriters": str(writers)}


def submitted_conf() -> dict[str, str]:
    """Properties spark-submit already set: its flags (--master ...) win over configuration files."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        return {}
    SparkContext._ensure_initialized()  # connect to spark-submit's JVM, whose properties hold its flags
    return dict(SparkConf().getAll())


def submitted_conf_keys() -> set[str]:
    return set(submitted_conf())


def get_session(spark: SparkConfig, compute: ComputeConfig):
    """Create (or return the active) SparkSession configured as ``spark`` says.

    ``compute.device`` is first checked by :func:`resolve_device` (against the master spark-submit was given,
    if any); a CPU fallback sets ``compute.device`` to ``cpu`` so every stage of the run sees it."""
    submitted = submitted_conf()
    master = submitted.get("spark.master", spark.master)
    device = resolve_device(compute, spark if master == spark.master else spark.model_copy(update={"master": master}))
    if device != compute.device:
        compute.device = device
    conf = spark_conf(spark, compute)
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
