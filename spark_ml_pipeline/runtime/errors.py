"""Errors a user can act on. Jobs print their message and exit non-zero, without a traceback.

Each error class carries the process exit code a scheduler sees (:class:`ExitCode`, the one table of them,
documented in docs/scheduling.md): a scheduler retries a store failure (4) or a locked date (5), never a bad
configuration (2) or bad data (3), which fail the same way until someone fixes them.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of every job (``python -m jobs.<job>`` and spark-submit alike)."""

    OK = 0
    CONFIG = 2  # bad configuration or usage: unknown key, wrong type, bad --run-date, unknown pipeline
    DATA = 3  # bad data: missing input files, missing/mistyped columns, rows not accounted for
    STORE = 4  # store or infrastructure failure: store not writable, tracking server unreachable, executors lost
    LOCKED = 5  # another run of the same pipeline and run date holds the lock
    INTERRUPTED = 130  # Ctrl-C (SIGINT) or SIGTERM: stopped cleanly, the lock released


class PipelineError(Exception):
    """Base class: the message names the file, column or key at fault."""

    exit_code: ExitCode = ExitCode.CONFIG


class ConfigError(PipelineError):
    """A configuration file or override is wrong (unknown key, wrong type, bad value)."""

    exit_code = ExitCode.CONFIG


class DataError(PipelineError):
    """Input data cannot be read as declared (missing files, missing or mistyped columns)."""

    exit_code = ExitCode.DATA


class StoreError(PipelineError):
    """The store (or the infrastructure behind it) failed: not writable, unreachable. Worth a retry."""

    exit_code = ExitCode.STORE


class ClusterError(PipelineError):
    """The Spark cluster failed under the run (executors lost during a stage Spark cannot retry). Worth a retry."""

    exit_code = ExitCode.STORE


class LockedError(PipelineError):
    """Another run of the same pipeline and run date holds its lock."""

    exit_code = ExitCode.LOCKED


class Interrupted(PipelineError):
    """The run was interrupted (SIGINT / SIGTERM); outputs are either committed whole or not at all."""

    exit_code = ExitCode.INTERRUPTED


def exit_code_of(exc: BaseException) -> int:
    """The exit code for an exception that reached a job's boundary."""
    if isinstance(exc, PipelineError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    return 1
