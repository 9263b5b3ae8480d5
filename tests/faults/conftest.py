"""Fault tests: things broken for real, and what a run does then. An executor SIGKILLed in the middle of the XGBoost
barrier stage on the standalone cluster; the tracking server, its PostgreSQL or the study's database down; the
store root not writable; the disk filling up while a model is saved; three writers on one store at once. The
search driver SIGKILLed mid-search is tests/spark_ml_pipeline/tune/test_search.py
(test_killed_search_resumes_without_losing_or_repeating_trials): part of this suite, not repeated here.

Every failure must end in one ``error: ...`` line naming the file, URI or key, with the job's exit code
(4: store or infrastructure), never a Python or Py4J traceback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def error_line(self) -> str:
        return one_error_line(self.stderr)


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line a failed job ends with; nothing like a traceback around it."""
    assert "Traceback" not in stderr and "Py4JJavaError" not in stderr, stderr[-5000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-5000:]
    assert stderr.rstrip().splitlines()[-1] == errors[0], stderr[-5000:]  # it ends the output
    return errors[0]


@pytest.fixture(scope="session")
def error_line():
    """``error_line(stderr)``: see :func:`one_error_line`."""
    return one_error_line


def job_env(**extra) -> dict:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1", **extra}


@pytest.fixture(scope="session")
def run_job():
    """``run_job("jobs.tune", "taxi_fare", "key=value", ..., env={...})``: the job as a process, timed."""
    def run(*args, env: dict | None = None, timeout: float = 600) -> Done:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, env=job_env(**(env or {})),
                              capture_output=True, text=True, timeout=timeout)
        return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    return run


@pytest.fixture
def dead_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound and closed just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
