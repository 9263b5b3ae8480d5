"""The command line shared by every job: ``PIPELINE [key=value ...] [--env ENV] [--conf-dir DIR] [--run-date D]``.

Every job exits with one of :class:`~spark_ml_pipeline.runtime.errors.ExitCode` (docs/scheduling.md): an error a
user can act on is one line on stderr, never a traceback; a run that writes outputs holds the lock of its
(pipeline, run date) in the store for as long as it runs (:mod:`spark_ml_pipeline.runtime.locks`).
"""
from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from datetime import date, datetime, timezone
from typing import Callable, Iterator, Sequence

from spark_ml_pipeline.runtime.config import CONF_DIR_ENV, known_pipelines, load_pipeline
from spark_ml_pipeline.runtime.errors import ClusterError, ConfigError, ExitCode, PipelineError, StoreError
from spark_ml_pipeline.runtime.io import is_local_uri
from spark_ml_pipeline.runtime.locks import LOCK_TIMEOUT_ENV, RunLock, lock_timeout, run_lock_uri
from spark_ml_pipeline.runtime.session import get_session
from spark_ml_pipeline.runtime.verbosity import VERBOSE_ENV, configure as configure_verbosity

EPILOG = f"""\
configuration layers (later wins): conf/base.yaml < conf/pipelines/<pipeline>.yaml < conf/env/<env>.yaml ...
< key=value. Overrides use dotted keys and YAML values, e.g. model.max_depth=6 spark.master='local[2]'.
The configuration directory is conf/ beside the code, or ${CONF_DIR_ENV}, or --conf-dir. A pipeline is a file
in conf/pipelines/; its `kind` (default: its name) is the package under pipelines/ that runs it.
scheduling (docs/scheduling.md): --run-date picks the date partition a run writes (re-running a date replaces
that date only); a run holds <store>/locks/<pipeline>/run_date=D.lock while it runs. Exit codes: 0 ok,
2 bad configuration, 3 bad data, 4 store/infrastructure failure (retry), 5 locked by another run, 130 interrupted.
examples:
  python -m jobs.run_pipeline taxi_fare
  python -m jobs.run_pipeline taxi_fare --run-date 2026-01-15
  python -m jobs.run_pipeline taxi_fare --env cluster model.num_workers=2
  spark-submit --master spark://127.0.0.1:7077 --py-files dist/spark_ml_pipeline.zip \\
      jobs/run_pipeline.py taxi_fare --env cluster
"""

RUN_DATE_KEY = "run_date"
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The stages that write outputs, and so run under the (pipeline, run date) lock.
LOCKED_STAGES = frozenset({"generate", "ingest", "featurize", "train", "run"})
DEFAULT_CHECK_ROWS = 10_000  # the rows --check reads: the first file or two, a few seconds of Spark
CHECK_EPILOG = """
a check before a run (the first rows only, nothing written; exit 3 when the ingest would fail, docs/tabular.md):
  python -m jobs.ingest flights_delay --check
  python -m jobs.ingest flights_delay --check --check-rows 100000
  python -m jobs.ingest taxi_fare_real --check ingest.input='new_trips/*.csv'
"""


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    known = ", ".join(known_pipelines()) if _conf_dir_exists() else "see conf/pipelines/"
    p.add_argument("pipeline", help=f"named pipeline: its conf/pipelines/<name>.yaml ({known})")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    p.add_argument("--env", default="local",
                   help="environment layer(s), comma-separated: local, cluster, gpu (default: local)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: conf/)")
    p.add_argument("--run-date", default=None, metavar="YYYY-MM-DD",
                   help="the run's date partition: sets the run_date key (default: today, UTC)")
    p.add_argument("--lock-timeout", default=None, type=float, metavar="SECONDS",
                   help=f"a run lock older than this is stale and broken (default: ${LOCK_TIMEOUT_ENV} or 24 h)")
    p.add_argument("--verbose", action="store_true",
                   help="let libraries' start-up and INFO logs through (TensorFlow's C++ log in the driver, Spark "
                        f"workers and Horovod ranks); quiet by default. Same as ${VERBOSE_ENV}=1")
    return p


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of rows, 1 or more")
    return value


def add_check_options(p: argparse.ArgumentParser) -> None:
    """``--check`` and ``--check-rows``: a sample of the input read and judged as the stage would, nothing written."""
    p.add_argument("--check", action="store_true",
                   help="read only the first rows of the input (--check-rows), apply the schema and rules as the "
                        "ingest does, print the quarantine by reason with values as read, and write nothing; exit 0 "
                        "when the quarantined share is within ingest.max_quarantine_fraction, 3 otherwise")
    p.add_argument("--check-rows", type=positive_int, default=None, metavar="N",
                   help=f"rows --check reads from each input (default {DEFAULT_CHECK_ROWS:,})")
    p.epilog = (p.epilog or "") + CHECK_EPILOG


def _conf_dir_exists() -> bool:
    try:
        known_pipelines()
        return True
    except OSError:
        return False


def envs_of(args) -> list[str]:
    return [e for e in args.env.split(",") if e]


def parse_run_date(text: str) -> date:
    """``YYYY-MM-DD`` as a date, or a ConfigError in one line."""
    try:
        if not DATE_PATTERN.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--run-date {text!r}: not a date; expected YYYY-MM-DD, e.g. 2026-01-15") from None


def with_run_date(args, overrides: Sequence[str]) -> list[str]:
    """The overrides plus ``run_date=D`` from ``--run-date`` (a conflicting ``run_date=`` override is an error)."""
    overrides = list(overrides)
    for item in overrides:  # checked here: YAML would raise a bare ValueError for 2026-13-01
        key, _, value = item.partition("=")
        if key.strip() == RUN_DATE_KEY and value.strip() and DATE_PATTERN.match(value.strip()):
            try:
                date.fromisoformat(value.strip())
            except ValueError:
                raise ConfigError(f"{item!r}: not a date; expected YYYY-MM-DD, e.g. 2026-01-15") from None
    if getattr(args, "run_date", None) is None:
        return overrides
    day = parse_run_date(args.run_date)
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == RUN_DATE_KEY and value.strip() != day.isoformat():
            raise ConfigError(f"--run-date {day.isoformat()} conflicts with the override {item!r}")
    return [*[o for o in overrides if o.partition("=")[0].strip() != RUN_DATE_KEY], f"{RUN_DATE_KEY}={day}"]


def fail(exc: PipelineError) -> int:
    """One clear line on stderr; the exit code of the error's kind (2 config, 3 data, 4 store, 5 locked)."""
    print(f"error: {exc}", file=sys.stderr)
    return int(exc.exit_code)


# --- mapping infrastructure failures at the job boundary -------------------------------------------------

def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line[:limit]


def _java_failure(exc: BaseException) -> str | None:
    """The first line of a py4j error whose Java exception (or a cause) is a ``java.io.IOException`` (store not
    writable, connection refused, ...), else None."""
    java = getattr(exc, "java_exception", None)
    for _ in range(10):
        if java is None:
            return None
        try:
            cls = java.getClass()
            while cls is not None:
                if cls.getName() == "java.io.IOException":
                    return _first_line(java.toString())
                cls = cls.getSuperclass()
            java = java.getCause()
        except Exception:  # the JVM is gone
            return None
    return None


def _lost_executor(exc: BaseException) -> str | None:
    """The ``ExecutorLostFailure ...`` line of a Spark job aborted because executors died, else None."""
    try:
        text = str(exc.java_exception.toString())
    except Exception:  # the JVM is gone
        return None
    if "Job aborted due to stage failure" not in text:
        return None
    return next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("ExecutorLostFailure")), None)


def store_error(exc: BaseException, config=None) -> StoreError | ClusterError | None:
    """A :class:`StoreError` naming the store for an infrastructure failure, else None (not one of ours).

    Mapped: OSError (store not writable, disk full), Java IOExceptions from Hadoop filesystems, a dead Spark
    JVM (py4j network errors), MLflow / SQLAlchemy / HTTP failures reaching the tracking store; a Spark job
    aborted by lost executors is a :class:`ClusterError` (same exit code 4: retry)."""
    store = f"store {config.store.root_uri}" if config is not None else "store"
    tracking = (f" (tracking {config.store.tracking_uri})"
                if config is not None and config.store.tracking_uri else "")
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return StoreError(f"{store}: {name}{where}: {exc.strerror or _first_line(exc)}")
    if module.startswith("py4j"):
        if name == "Py4JJavaError":
            lost = _lost_executor(exc)
            if lost:
                master = f"Spark cluster {config.spark.master}" if config is not None else "Spark cluster"
                return ClusterError(f"{master}: a stage failed after an executor was lost ({lost})")
            cause = _java_failure(exc)
            return StoreError(f"{store}: {cause}") if cause else None
        return StoreError(f"{store}: the Spark JVM is unreachable ({name}: {_first_line(exc)})")
    if module.startswith(("mlflow", "sqlalchemy", "requests", "urllib3")):
        return StoreError(f"{store}{tracking}: {name}: {_first_line(exc)}")
    return None


# --- one job run -----------------------------------------------------------------------------------------

class Signals:
    """SIGINT and SIGTERM (a scheduler killing the task) unwind as KeyboardInterrupt, so locks and temporary
    outputs are cleaned up. Python drops an exception raised where it cannot propagate (an at-fork hook while
    Spark launches its JVM, a finalizer), so the signal is also remembered and :meth:`checkpoint` re-raises it."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False

    def _handle(self, signum, frame):
        self.received = signum
        if not self._deferring:
            raise KeyboardInterrupt(f"signal {signum}")

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal until the block ends (then raise it): interrupting Spark's JVM launch orphans the JVM."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        self.checkpoint()

    def checkpoint(self) -> None:
        if self.received is not None:
            raise KeyboardInterrupt(f"signal {self.received}")

    @contextlib.contextmanager
    def installed(self) -> Iterator["Signals"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Job:
    """One job invocation: loads the configuration (with ``--run-date``), holds the run lock, maps failures
    to exit codes. ``jobs.score`` and ``jobs.tune`` use it the way :func:`run_stage` does."""

    def __init__(self, args) -> None:
        self.args = args
        self.config = None
        self.signals = Signals()
        # Before anything imports TensorFlow; the processes the job starts inherit it (runtime/verbosity.py).
        configure_verbosity(getattr(args, "verbose", False))

    def load(self, overrides: Sequence[str] | None = None):
        """(config, definition); ``run_date`` pinned to today (UTC) when not set, so a run crossing midnight
        writes, and locks, the date it started on."""
        overrides = self.args.overrides if overrides is None else overrides
        config, definition = load_pipeline(self.args.pipeline, envs_of(self.args),
                                           with_run_date(self.args, overrides), self.args.conf_dir)
        if config.run_date is None:
            config.run_date = datetime.now(timezone.utc).date()
        self.config = config
        return config, definition

    @contextlib.contextmanager
    def lock(self, spark=None, scope: str | None = None) -> Iterator[RunLock]:
        """Hold the lock of this (pipeline, run date) in the store for the block; ``scope`` names a separate lock
        (e.g. "score"). A local store is locked without Spark; any other store through the Hadoop filesystem of
        ``spark`` (default: the configuration's session, started here).

        A signal while the lock is being taken or released is held until that is done, then raised: raised in
        between (the file written, not yet held; or read, not yet deleted) it left the lock behind, and the next
        run of the date exited 5."""
        config = self.config
        if spark is None and not is_local_uri(config.store.root_uri):
            spark = self.session(config)
        uri = run_lock_uri(config.store.root_uri, config.pipeline, config.run_date.isoformat(), scope)
        run_lock = RunLock(uri, timeout=lock_timeout(getattr(self.args, "lock_timeout", None)), spark=spark,
                           store=config.store.root_uri)
        try:
            with self.signals.deferred():
                run_lock.acquire()
            yield run_lock
        finally:
            with self.signals.deferred():  # and while it is being released
                run_lock.release()

    def session(self, config=None):
        """The SparkSession of ``config`` (default: the loaded one), a signal during its start held until it is up."""
        config = config or self.config
        with self.signals.deferred():
            return get_session(config.spark, config.compute)

    def run(self, body: Callable[[], int | None]) -> int:
        """Run ``body`` and map what escapes it to an exit code (docs/scheduling.md)."""
        try:
            with self.signals.installed():
                code = body()
                self.signals.checkpoint()
            return int(ExitCode.OK if code is None else code)
        except PipelineError as exc:
            return fail(exc)
        except KeyboardInterrupt:
            print("interrupted: nothing half-written was committed; the run lock is released", file=sys.stderr)
            return int(ExitCode.INTERRUPTED)
        except Exception as exc:
            mapped = store_error(exc, self.config)
            if mapped is None:
                raise
            return fail(mapped)


def run_stage(stage: str, description: str, argv: Sequence[str] | None = None,
              report: Callable | None = None, prog: str | None = None,
              preflight: Callable | None = None, check: Callable | None = None) -> int:
    """Parse arguments, load and validate configuration (before Spark starts), run one stage.

    ``report(definition, result, config)`` makes the printed summary (default: the stage's result).
    ``preflight(config)`` checks what the stage needs (e.g. the store answers) before the lock, Spark or any data
    is touched: a store that is down fails the run at once, not after its expensive work.
    ``check(start_spark, config, definition, rows)`` offers ``--check`` / ``--check-rows``: it runs instead of the
    stage, without lock or preflight, and its exit code is the job's (``jobs.ingest``)."""
    p = parser(prog or f"jobs.{stage}", description)
    if check is not None:
        add_check_options(p)
    args = p.parse_intermixed_args(argv)
    if check is not None and args.check_rows is not None and not args.check:
        p.error("--check-rows: only with --check")
    job = Job(args)

    def body() -> int:
        config, definition = job.load()
        if check is not None and args.check:
            return check(job.session, config, definition, args.check_rows or DEFAULT_CHECK_ROWS)
        if stage not in definition.stages:
            raise PipelineError(f"pipeline {args.pipeline!r} (kind {config.kind}) has no {stage!r} stage "
                                f"(it has: {', '.join(definition.stages)})")
        started = time.time()
        if preflight is not None:
            preflight(config)
        with contextlib.ExitStack() as stack:
            if stage in LOCKED_STAGES:
                stack.enter_context(job.lock())  # a local store before Spark starts: a locked run exits at once
            spark = job.session(config)
            result = definition.stages[stage](spark, config)
            job.signals.checkpoint()
        print(report(definition, result, config) if report
              else f"{stage}: done in {time.time() - started:.1f} s\n{result}")
        return ExitCode.OK

    return job.run(body)
