"""The shared store's tracking side: MLflow experiments, runs and model artifacts (sqlite + files by default).

Models are committed atomically into the run's artifact directory: Spark writes a hidden temporary
directory which is renamed to ``model`` only when complete, so a failed run never leaves a partial
model, and the run is marked FAILED by MLflow.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlparse

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import mlflow  # noqa: E402

from spark_ml_pipeline.runtime.config_models import StoreConfig  # noqa: E402
from spark_ml_pipeline.runtime.io import atomic_output, join, local_path  # noqa: E402
HADOOP_SCHEMES = {"file", "hdfs", "s3a", "abfs", "abfss", "gs", "viewfs"}
MODEL_ARTIFACT = "model"
MODEL_COMMITTED_TAG = "model_committed"


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
        return f"sqlite:///{root / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return self.config.artifact_uri or join(self.root, "artifacts")

    def experiment_id(self, name: str) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return mlflow.create_experiment(name, artifact_location=join(self.artifact_root, name))
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
            yield active


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


def commit_spark_model(spark, model, run) -> str:
    """Save a Spark ML model as the run's ``model`` artifact, atomically; returns its URI."""
    artifact_uri = run.info.artifact_uri
    scheme = urlparse(artifact_uri).scheme or "file"
    if scheme in HADOOP_SCHEMES:
        target = join(artifact_uri, MODEL_ARTIFACT)
        with atomic_output(spark, target) as temporary:
            model.write().overwrite().save(temporary)
    else:  # e.g. a proxied mlflow-artifacts: URI: write locally, then upload
        with tempfile.TemporaryDirectory() as local:
            model.write().overwrite().save(str(Path(local) / MODEL_ARTIFACT))
            mlflow.log_artifacts(str(Path(local) / MODEL_ARTIFACT), MODEL_ARTIFACT)
        target = f"{artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
    mlflow.set_tag(MODEL_COMMITTED_TAG, "true")
    mlflow.set_tag("model_uri", target)
    return target


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

