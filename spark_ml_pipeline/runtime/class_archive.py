"""The driver JVM's class-data-sharing archive: Spark's classes mapped from one file instead of loaded and
verified from its jars at every start.

A short job's driver JVM spends most of its first seconds loading classes (Spark's start and its first query
touch thousands, from the 280 jars pyspark ships). HotSpot's dynamic CDS archive (JDK 13+) records the classes
a JVM loaded when it exits; a later JVM given the archive maps them in. Measured here (bench/short_jobs.py): a
local session's start plus a first small write and read take about half the time with it.

The archive belongs to one Java runtime and one Spark: it is named by both and kept in the environment's
``share/`` (a rebuilt environment rebuilds it). ``make setup`` records it from one small taxi_fare run
(scripts/build_class_archive.py). A JVM given an archive that does not match its classpath or build ignores it
and loads classes as usual, so a stale archive costs speed, never correctness.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

# What this environment builds once and keeps: the class archive, and the store's empty MLflow schema
# (spark_ml_pipeline/store/local_database.py).
SHARE_DIR = Path(sys.prefix) / "share" / "spark-ml-pipeline"
# Set by the recording run (scripts/build_class_archive.py): the JVM writes the archive there when it exits.
RECORD_ENV = "SPARK_ML_PIPELINE_RECORD_CLASSES"
# An archive the JVM cannot use is one warning line on stdout per start, and recording warns of every class it
# skips (signed jars, old bytecode): neither is the user's business.
QUIET = "-Xlog:cds=off,cds+dynamic=off"


def java_executable() -> Path | None:
    """The java Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the first on PATH (bin/spark-class)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_path() -> Path | None:
    """Where this environment's archive for this java and this Spark is (whether or not it exists yet)."""
    java = java_executable()
    if java is None:
        return None
    key = hashlib.sha256(f"{java}|{java.stat().st_mtime_ns}|pyspark {version('pyspark')}".encode()).hexdigest()
    return SHARE_DIR / f"driver-classes-{key[:16]}.jsa"


def class_archive_options() -> list[str]:
    """The JVM options for the archive (the driver's and this machine's executors'): record it (the recording
    run), use it (it exists), or none."""
    record = os.environ.get(RECORD_ENV)
    if record:
        return [f"-XX:ArchiveClassesAtExit={record}", QUIET]
    path = archive_path()
    return [f"-XX:SharedArchiveFile={path}", QUIET] if path is not None and path.is_file() else []
