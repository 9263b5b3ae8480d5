"""The shared store's tracking side: MLflow experiments, runs and model artifacts (sqlite + files by default).

Models are committed atomically: Spark writes a hidden temporary directory which is renamed to ``model`` only
when complete, so a failed run never leaves a partial model, and the run is marked FAILED by MLflow. Where
depends on the run's artifact location:

* a Hadoop URI (``file:``, ``hdfs:``, ``s3a:`` ...; the default, ``<store root>/artifacts``): the run's
  ``model`` artifact directory itself;
* a tracking server's proxied artifacts (``mlflow-artifacts:``, ``http(s):``; the default with
  ``store.tracking_uri=http://...``, see docs/store.md): the executors cannot write there, and a model saved
  on the driver's local disk would be incomplete on a cluster (each executor writes its own parts). The model
  goes to ``<store root>/models/<experiment>/<run id>/model`` (the store root is on a filesystem the driver
  and every executor share) and the run records that location: tag ``model_uri`` and a small
  ``model_location.json`` artifact. Registered versions point at the same location.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlparse

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import mlflow  # noqa: E402
import sqlalchemy  # noqa: E402

from spark_ml_pipeline.runtime.config_models import StoreConfig  # noqa: E402
from spark_ml_pipeline.runtime.database_urls import rdb_url, redacted  # noqa: E402
from spark_ml_pipeline.runtime.errors import StoreError  # noqa: E402
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, is_local_uri, join, local_path, to_uri  # noqa: E402
from spark_ml_pipeline.store.local_database import create_if_absent  # noqa: E402

HADOOP_SCHEMES = {"file", "hdfs", "s3a", "abfs", "abfss", "gs", "viewfs"}
MODEL_ARTIFACT = "model"
MODEL_COMMITTED_TAG = "model_committed"
MODEL_POINTER_ARTIFACT = "model_location.json"
SERVER_SCHEMES = {"http", "https"}
# A store that does not answer within this many seconds fails the run at its start (exit code 4), not after
# the data were generated, ingested and fitted. 10 s: a one-worker server busy with another run's artifact upload
# on a loaded machine answered in 5-6 s (the concurrent-writers test under load); a dead one refuses at once.
PREFLIGHT_TIMEOUT = 10
_OPEN_RUNS: dict[str, "Store"] = {}  # run id -> the store of a run open in this process (Store.run)


class Store:
    """The MLflow tracking and artifact URIs of a store root, and its experiments and runs."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.root = config.root_uri

    @property
    def tracking_uri(self) -> str:
        if self.config.tracking_uri:
            return self.config.tracking_uri
        root = local_path(self.root)
        root.mkdir(parents=True, exist_ok=True)
        create_if_absent(root / "mlflow.db")
        return f"sqlite:///{root / 'mlflow.db'}"

    @property
    def uses_server(self) -> bool:
        """True when the tracking URI is an MLflow tracking server (``http(s)://``)."""
        return urlparse(self.tracking_uri).scheme in SERVER_SCHEMES

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments keep their artifacts: ``store.artifact_uri``; else, with a tracking server,
        None (the server's default: artifacts it proxies, ``mlflow-artifacts:/...``); else
        ``<store root>/artifacts``."""
        if self.config.artifact_uri:
            return self.config.artifact_uri
        return None if self.uses_server else join(self.root, "artifacts")

    @property
    def models_root(self) -> str:
        """Where Spark models of runs with non-Hadoop (proxied) artifact locations are written."""
        return join(self.root, "models")

    def experiment_id(self, name: str) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.artifact_root
        try:
            return mlflow.create_experiment(name, artifact_location=join(root, name) if root else None)
        except Exception:  # another process created it first
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
        """An MLflow run; an exception inside marks it FAILED (MLflow's own behaviour)."""
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as active:
            _OPEN_RUNS[active.info.run_id] = self
            try:
                yield active
            finally:
                _OPEN_RUNS.pop(active.info.run_id, None)


def log_params(params: Mapping[str, Any]) -> None:
    items = [(k, str(v)[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):  # MLflow's batch limit
        mlflow.log_params(dict(items[start:start + 100]))


def log_json(payload: Any, artifact_file: str) -> None:
    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def commit_spark_model(spark, model, run, models_root: str | None = None, experiment: str | None = None) -> str:
    """Save a Spark ML model for ``run``, atomically, where every executor can write; returns its URI.

    A Hadoop artifact location: the run's ``model`` artifact. Otherwise (a tracking server's proxied
    artifacts): ``<models_root>/<experiment>/<run id>/model`` (``models_root`` a Hadoop URI, normally
    ``<store root>/models``), recorded on the run as tag ``model_uri`` and artifact ``model_location.json``."""
    artifact_uri = run.info.artifact_uri
    scheme = urlparse(artifact_uri).scheme or "file"
    if scheme in HADOOP_SCHEMES:
        target = join(artifact_uri, MODEL_ARTIFACT)
    else:
        store = _OPEN_RUNS.get(run.info.run_id)
        models_root = models_root or (store.models_root if store else None)
        if not models_root:
            raise ValueError(f"run {run.info.run_id}'s artifacts ({artifact_uri}) are not on a Hadoop filesystem: "
                             "a Spark model needs models_root (<store root>/models) on a shared filesystem")
        root_scheme = urlparse(to_uri(models_root)).scheme
        if root_scheme not in HADOOP_SCHEMES:
            raise ValueError(f"models root {models_root} is not a Hadoop filesystem URI "
                             f"({', '.join(sorted(HADOOP_SCHEMES))})")
        experiment = experiment or mlflow.MlflowClient().get_experiment(run.info.experiment_id).name
        target = join(models_root, experiment.strip("/").replace("/", "_"), run.info.run_id, MODEL_ARTIFACT)
    try:
        with atomic_output(spark, target) as temporary:
            model.write().overwrite().save(temporary)
    except Exception as exc:
        reason = _io_failure(exc)
        if reason is None:
            raise
        if scheme not in HADOOP_SCHEMES:  # the run's own directory under the models root, left empty: remove it
            run_dir = target.rsplit("/", 1)[0]
            with contextlib.suppress(Exception):
                if HadoopFS(spark).exists(run_dir) and not HadoopFS(spark).list_files(run_dir):
                    HadoopFS(spark).delete(run_dir)
        raise StoreError(f"the model of run {run.info.run_id} could not be written to {target} ({reason}); "
                         "nothing was committed") from None
    if scheme not in HADOOP_SCHEMES:
        mlflow.log_dict({"model_uri": target, "format": "spark-ml PipelineModel",
                         "load": f"pyspark.ml.PipelineModel.load({target!r})"}, MODEL_POINTER_ARTIFACT)
    mlflow.set_tag(MODEL_COMMITTED_TAG, "true")
    mlflow.set_tag("model_uri", target)
    return target


def _io_failure(exc: BaseException) -> str | None:
    """The innermost cause of a failed write (an OSError, or a Java IOException under a py4j error: disk full,
    not writable, a file where a directory must be), else None (not a storage failure)."""
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    java = getattr(exc, "java_exception", None)
    io_seen, innermost = False, java
    try:
        for _ in range(20):  # a bounded walk down the causes
            if java is None:
                break
            cls = java.getClass()
            while cls is not None and not io_seen:
                io_seen = cls.getName() == "java.io.IOException"
                cls = cls.getSuperclass()
            innermost, java = java, java.getCause()
        return _first_line(innermost.toString()) if io_seen else None
    except Exception:  # the JVM is gone
        return None


def tag_run(tracking_uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Tags on a finished run (e.g. where a pipeline wrote outputs made after the model)."""
    client = mlflow.MlflowClient(tracking_uri)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_metrics_to_run(tracking_uri: str, run_id: str, metrics: Mapping[str, float]) -> None:
    """Metrics on a finished run (e.g. a baseline evaluated after the model was recorded)."""
    client = mlflow.MlflowClient(tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))


def model_uri_of(run) -> str:
    """The committed model of a finished run (refuses runs whose model was never committed)."""
    if run.data.tags.get(MODEL_COMMITTED_TAG) != "true":
        raise FileNotFoundError(f"run {run.info.run_id} has no committed model")
    return run.data.tags["model_uri"]



# --- preflight: is the store there, before any Spark job? ---------------------------------------------------

def check_store(config: StoreConfig, tracking: bool = True, root: bool = True,
                timeout: float = PREFLIGHT_TIMEOUT) -> None:
    """Fail fast, before Spark starts, with a :class:`StoreError` (one line naming the URI, exit code 4): (``root``)
    a local store root must take a file, and (``tracking``) a tracking server or database must answer one call
    within ``timeout`` seconds, without retries. A root on another Hadoop filesystem needs Spark to probe: the run
    lock does. The default tracking store, sqlite under the root, is the root's probe."""
    if root and is_local_uri(config.root_uri):
        probe_writable(local_path(config.root_uri), config.root_uri)
    uri = config.tracking_uri
    if not tracking or not uri:
        return
    scheme = urlparse(uri).scheme
    if scheme in SERVER_SCHEMES:
        _server_answers(uri, timeout, config.root_uri)
    elif scheme not in ("", "file", "sqlite", "databricks"):  # a database: postgresql://, mysql://
        check_database(uri, timeout, f"store {config.root_uri}: tracking database")


def probe_writable(path: Path, uri: str) -> None:
    """Create ``path`` if needed and write (then remove) a small hidden file in it."""
    probe = path / f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb") as handle:
            handle.write(b"probe")
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise StoreError(f"store {uri}: not writable: {exc.strerror or exc}{where}") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _server_answers(uri: str, timeout: float, root: str) -> None:
    # MLflow's client retries a dead server with exponential back-off for minutes: one try here, bounded.
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(timeout))}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)  # reaches the server's backend database too
    except Exception as exc:
        raise StoreError(f"store {root}: tracking server {uri} does not answer "
                         f"({type(exc).__name__}: {_first_line(exc)})") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_database(url: str, timeout: float, what: str) -> None:
    """One connection and ``SELECT 1`` to an RDB URL within ``timeout`` seconds, else a StoreError naming
    ``what`` and the URL (password redacted)."""
    location = rdb_url(url)
    connect_args = ({"connect_timeout": max(1, int(timeout))}
                    if location.startswith(("postgresql", "postgres", "mysql")) else {})
    engine = None
    try:
        engine = sqlalchemy.create_engine(location, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        raise StoreError(f"{what} {redacted(url)} does not answer ({type(exc).__name__}: {_first_line(exc)})") \
            from None
    finally:
        if engine is not None:
            engine.dispose()


def _first_line(exc: BaseException, limit: int = 240) -> str:
    """What went wrong, short: the OS error at the bottom of a wrapped connection failure, else the first line."""
    text = str(exc)
    for pattern in _ROOT_CAUSES:
        found = re.search(pattern, text)
        if found:
            return found.group(0).strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:limit]


# The part of a wrapped HTTP client error that says what happened (refused, timed out, the server's status).
_ROOT_CAUSES = (r"\[Errno -?\d+\] [^'\")\]]+", r"Read timed out\. \(read timeout=[\d.]+\)",
                r"error code \d+ != 200")
