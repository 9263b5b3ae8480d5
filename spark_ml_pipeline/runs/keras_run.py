"""One recorded Keras fit: distributed training (Horovod or tf_distribute), evaluation on every test set, and the run in the store.

Every Keras pipeline calls :func:`train_and_record` with its :class:`Prepared` data, its evaluation function and
the test figure its models are judged by; the run is recorded by the one :class:`RunRecorder`, and the model is
committed as a Spark ``PipelineModel`` (the pipeline's feature stages, then the :class:`KerasModel` carrying its
``.keras`` file) and registered: it takes the alias (``champion``) when there is none yet or it beats the holder
on the same test rows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from spark_ml_pipeline.report import sections
from spark_ml_pipeline.report.document import Report
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.runtime.io import join, local_path
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.store.registry import Promotion
from spark_ml_pipeline.train.deep_learning import (DeepPipelineConfig, Prepared, check_parameters, estimator_for,
                                                   work_location)
from spark_ml_pipeline.train.keras_estimator import KerasModel


@dataclass
class DeepResult:
    run_id: str
    model_uri: str
    metrics: dict
    history: dict
    rows: dict
    tracking_uri: str
    seconds: float
    model: KerasModel | None = None
    report: str | None = None  # where the run's report.html is
    promotion: Promotion | None = None  # the registered version; None with registry.promote_runs=false


def scoring_model(prepared: Prepared, keras_model: KerasModel) -> PipelineModel:
    """What scoring loads: ingested rows -> the pipeline's feature stages -> the Keras model."""
    return PipelineModel(stages=[*prepared.feature_stages, keras_model])


def judge(model_uri: str, prepared: Prepared, evaluate: Callable[[DataFrame], dict], metric: str) -> float:
    """``metric`` of ``evaluate``'s result for a committed model (e.g. the current champion) on the ``test`` set."""
    return float(evaluate(PipelineModel.load(model_uri).transform(prepared.tests["test"]))[metric])


# What a pipeline's report shows of its scored first test set; returns the run's prediction profile.
Describe = Callable[[Report, DataFrame], dict]


def train_and_record(spark, config: DeepPipelineConfig, prepared: Prepared,
                     evaluate: Callable[[DataFrame], dict], *, test_metric: str, test_direction: str,
                     feature_pipeline=None, describe: Describe | None = None) -> DeepResult:
    """Fit on the configured backend, evaluate every test set, and record everything in one MLflow run, with its report:
    learning curves, the metrics, and what ``describe`` draws from the first test set's predictions. The model
    is registered, judged by ``test_metric`` (a key of ``evaluate``'s result on the ``test`` set, better in
    ``test_direction``) against the current champion, as the search's refit is."""
    started = time.time()
    estimator = estimator_for(config, prepared)
    check_parameters(estimator, prepared.train)  # every parameter checked before any Spark job
    with RunRecorder(spark, config, tags={"model_kind": config.model.kind}) as recorder:
        recorder.log_config(("model", "training", "data"), extra=prepared.extra_params)
        recorder.log_lineage(prepared.input_files)

        fit_started = time.time()
        model = estimator.fit(prepared.train)
        fit_seconds = time.time() - fit_started
        recorder.log_history(model.summary.history)

        metrics = {"fit_seconds": fit_seconds, "epochs_trained": model.summary.epochs_trained}
        rows = {"rows_train": model.summary.rows}
        details, profile = Report("details"), None
        for index, (test_name, test_df) in enumerate(prepared.tests.items()):
            scorer = model
            if test_name in prepared.test_input_shapes:  # the same weights on another grid
                scorer = model.copy({model.inputShape: list(prepared.test_input_shapes[test_name])})
            scored = scorer.transform(test_df)
            described = config.report.enabled and describe is not None and index == 0
            if described:  # scored once for the metrics and the report's sample
                scored = scored.cache()
            try:
                for key, value in evaluate(scored).items():
                    metrics[f"{test_name}_{key}"] = value
                if described:
                    profile = describe(details, scored)
            finally:
                if described:
                    scored.unpersist()
        recorder.log_metrics({**metrics, **rows})
        judged = f"test_{test_metric}"
        if config.registry.promote_runs and judged not in metrics:  # before anything is committed
            raise PipelineError(f"{config.pipeline}: its evaluation gave no {test_metric!r} on the test set to "
                                f"judge the model by (gave: {', '.join(sorted(metrics))})")
        if feature_pipeline is not None:
            with_features = local_path(join(work_location(config), "feature_pipeline"))
            feature_pipeline.write().overwrite().save(str(with_features))
            recorder.log_artifacts(str(with_features), "feature_pipeline")
        model_uri = recorder.commit_model(scoring_model(prepared, model))
        promotion = recorder.register(model_uri, judged, metrics.get(judged), test_direction,
                                      lambda uri: judge(uri, prepared, evaluate, test_metric))
        report_uri = None
        if config.report.enabled:
            report = recorder.report(model=config.model.kind, ranks=config.training.num_proc,
                                     epochs=model.summary.epochs_trained, rows_train=model.summary.rows)
            sections.metrics_table(report, {**metrics, **rows})
            sections.learning_curves(report, model.summary.history)
            report.sections += details.sections
            report_uri = recorder.log_report(report, profile, model_uri)
    return DeepResult(run_id=recorder.run_id, model_uri=model_uri, metrics=metrics, history=model.summary.history,
                      rows=rows, tracking_uri=recorder.tracking_uri, seconds=time.time() - started, model=model,
                      report=report_uri, promotion=promotion)


def summary(result: DeepResult, config: DeepPipelineConfig) -> str:
    shown = " · ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items())
                       if isinstance(v, float) and k not in ("fit_seconds",))
    return "\n".join([
        f"{config.pipeline} ({config.model.kind}) · run date {run_date(config)} · MLflow run {result.run_id}"
        f" · {result.seconds:.0f} s",
        f"  trained on {result.rows['rows_train']:,} rows with {config.training.num_proc} ranks "
        f"({config.training.backend}), "
        f"{result.metrics['epochs_trained']} epochs",
        f"  {shown}",
        f"  model   {result.model_uri}",
        *([f"  registry {result.promotion.summary()}"] if result.promotion else []),
        *([f"  report  {result.report}"] if result.report else []),
        f"  metrics {result.tracking_uri} (experiment {config.store.experiment or config.pipeline})",
    ])
