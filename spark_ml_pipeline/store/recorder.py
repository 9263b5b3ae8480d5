"""The one run recorder: every pipeline run and every search refit is recorded the same way.

An MLflow run with the pipeline's tags, the configuration's parameters, lineage (data fingerprint, code and
library versions, the configuration), metrics and learning curves, and the model, committed atomically as a
Spark ML model (a ``PipelineModel`` of feature stages and the estimator's model), so scoring loads one thing
and applies exactly the training transform; :meth:`RunRecorder.register` adds it to the model registry. An
exception inside the ``with`` marks the run FAILED and leaves no model.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import mlflow
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.report.document import Report
from spark_ml_pipeline.report.profile import PROFILE_ARTIFACT
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase, run_date
from spark_ml_pipeline.runtime.io import HadoopFS, is_local_uri, join, local_path
from spark_ml_pipeline.store.lineage import lineage_record
from spark_ml_pipeline.store.registry import Promotion, promote_if_better, registry_description
from spark_ml_pipeline.store.tracking import Store, commit_spark_model, flatten, log_json, log_params

REPORT_ARTIFACT = "report.html"


class RunRecorder:
    """``with RunRecorder(spark, config) as recorder:`` records one run of ``config``'s pipeline."""

    def __init__(self, spark, config: PipelineConfigBase, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None) -> None:
        self.spark, self.config = spark, config
        self.store = Store(config.store)
        self.experiment = config.store.experiment or config.pipeline
        self.run_name = run_name or f"{config.pipeline}-{run_date(config)}"
        self.tags = {"pipeline": config.pipeline, "pipeline_kind": config.kind, "run_date": run_date(config),
                     "device": config.compute.device, "spark_master": spark.sparkContext.master, **(tags or {})}
        self.run = None
        self._context = None

    def __enter__(self) -> "RunRecorder":
        self._context = self.store.run(self.experiment, run_name=self.run_name, tags=self.tags)
        self.run = self._context.__enter__()
        return self

    def __exit__(self, *exc_info) -> bool | None:
        return self._context.__exit__(*exc_info)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def tracking_uri(self) -> str:
        return self.store.tracking_uri

    def log_config(self, sections: Iterable[str], extra: Mapping[str, Any] | None = None) -> dict:
        """The configuration's ``sections`` as flat parameters; the whole configuration as config.json."""
        snapshot = self.config.model_dump(mode="json")
        wanted = set(sections)
        log_params({**{k: v for k, v in flatten(snapshot).items() if k.split(".")[0] in wanted}, **(extra or {})})
        log_json(snapshot, "config.json")
        return snapshot

    def log_lineage(self, input_files: list[tuple[str, int, int]], **tags: str) -> dict:
        """lineage.json, and its fingerprint and commit as tags (searchable in the MLflow UI)."""
        lineage = lineage_record(input_files, self.config.model_dump(mode="json"))
        mlflow.set_tags({"data_fingerprint": lineage["data_fingerprint"], "git_commit": lineage["git_commit"],
                         "git_dirty": lineage["git_dirty"], **tags})
        log_json(lineage, "lineage.json")
        return lineage

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Numeric values only (None and strings are skipped)."""
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})

    def log_history(self, history: Mapping[str, list[float]], prefix: str = "epoch_") -> None:
        """Learning curves: one metric per name, one step per epoch (or round)."""
        for name, values in history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(f"{prefix}{name}", float(value), step=step)

    def log_json(self, payload: Any, artifact_file: str) -> None:
        log_json(payload, artifact_file)

    def log_artifacts(self, local_dir: str, artifact_path: str) -> None:
        mlflow.log_artifacts(local_dir, artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        mlflow.set_tags(dict(tags))

    def commit_model(self, model) -> str:
        """The fitted Spark ML model as the run's ``model`` artifact, committed atomically; returns its URI."""
        return commit_spark_model(self.spark, model, self.run)

    def register(self, model_uri: str, metric: str, value: float, direction: str,
                 evaluate: Callable[[str], float]) -> Promotion | None:
        """The committed model as a new version of the pipeline's registered model (``registry``): it takes the
        alias when no version holds it, or when its ``metric`` ``value`` beats the holder's, which
        ``evaluate(model_uri)`` measures on this run's test rows. The run is tagged ``promoted`` and
        ``model_version``, as a search's run is. None when ``registry.promote_runs`` is false."""
        registry = self.config.registry
        if not registry.promote_runs:
            return None
        # Nothing printed while the run goes on: the job's summary shows the outcome (Promotion.summary).
        promotion = promote_if_better(
            MlflowClient(self.tracking_uri), name=self.config.registered_model, alias=registry.alias,
            model_uri=model_uri, run_id=self.run_id, metric=metric, value=value, direction=direction,
            evaluate=evaluate, progress=lambda line: None,
            description=registry_description(self.config.pipeline, registry.alias))
        self.set_tags({"promoted": str(promotion.promoted).lower(), "model_version": promotion.version})
        return promotion

    def report(self, **facts: Any) -> Report:
        """An empty report of this run, headed by the pipeline, run date, run id and ``facts``."""
        return Report(f"{self.config.pipeline} · run {run_date(self.config)}",
                      {"pipeline": self.config.pipeline, "kind": self.config.kind, "MLflow run": self.run_id, **facts})

    def log_report(self, report: Report, profile: Mapping[str, Any] | None = None,
                   model_uri: str | None = None) -> str:
        """The report as the run's ``report.html`` artifact (and ``prediction_profile.json``); when the model
        was committed outside the run's artifacts (a tracking server's store), a copy next to the model too.
        Returns where a person opens it: the copy beside the model, else the artifact's URI."""
        with tempfile.TemporaryDirectory(prefix="report-") as directory:
            path = report.write(Path(directory) / REPORT_ARTIFACT)
            mlflow.log_artifact(str(path))
            beside_model = None
            if model_uri and not model_uri.startswith(self.run.info.artifact_uri.rstrip("/") + "/"):
                beside_model = join(model_uri.rstrip("/").rsplit("/", 1)[0], REPORT_ARTIFACT)
                if is_local_uri(beside_model):  # Hadoop's local filesystem would leave a .crc file beside it
                    report.write(local_path(beside_model))
                else:
                    HadoopFS(self.spark).write_text(beside_model, path.read_text(encoding="utf-8"))
        if profile is not None:
            log_json(dict(profile), PROFILE_ARTIFACT)
        where = beside_model or f"{self.run.info.artifact_uri.rstrip('/')}/{REPORT_ARTIFACT}"
        mlflow.set_tag("report_uri", where)
        return where
