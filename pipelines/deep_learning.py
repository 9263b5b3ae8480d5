"""Shared plumbing of the Keras pipelines: config sections, the Horovod fit, evaluation and the store.

A named deep-learning pipeline supplies a :class:`Prepared` (Spark DataFrames with model-ready array
columns, shapes, loss) and an evaluation function; :func:`train_and_record` does the rest the same way
for all of them: fit with Horovod, per-epoch and final metrics, model, feature pipeline and lineage to MLflow.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from pydantic import Field, PositiveInt, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config_models import PipelineConfigBase, Section, run_date
from pipelines.io import join, local_path
from pipelines.keras_estimator import VALIDATION, KerasHorovodEstimator, KerasModel
from pipelines.lineage import lineage_record, short_digest
from pipelines.models.zoo import ModelSpec
from pipelines.store import MODEL_ARTIFACT, MODEL_COMMITTED_TAG, Store, flatten, log_json, log_params


class TrainingSection(Section):
    """How the Horovod fit trains; ``learning_rate`` is per rank (scaled by the number of ranks)."""

    num_proc: PositiveInt = 2
    epochs: PositiveInt = 3
    batch_size: PositiveInt = 128
    learning_rate: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decays to 0 by the last epoch
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up to the rank-scaled learning rate
    early_stopping_patience: int = Field(3, ge=0)  # 0 = off
    threads_per_rank: Optional[PositiveInt] = None  # default: cores // num_proc
    shuffle_buffer: PositiveInt = 10_000
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 0

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> "TrainingSection":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        return self


class DataLimits(Section):
    """Take the first N rows (tests and quick runs); null = all."""

    train_limit: Optional[PositiveInt] = None
    test_limit: Optional[PositiveInt] = None


class DeepPipelineConfig(PipelineConfigBase):
    training: TrainingSection = TrainingSection()
    data: DataLimits = DataLimits()
    # Named model variants (the pipeline's conf file lists them); ``model: <name>`` picks one, so
    # ``model=resnet`` on the command line switches architecture.
    models: dict[str, dict] = {}
    model: ModelSpec

    @model_validator(mode="before")
    @classmethod
    def _pick_variant(cls, data):
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            variants = data.get("models") or {}
            if data["model"] not in variants:
                raise ValueError(f"model {data['model']!r} is not a variant listed under 'models' "
                                 f"(variants: {', '.join(sorted(variants)) or 'none'})")
            data = {**data, "model": variants[data["model"]]}
        return data


@dataclass
class Prepared:
    """Model-ready data: ``train`` carries the validation flag; ``tests`` are scored and evaluated."""

    train: DataFrame
    tests: dict[str, DataFrame]
    input_shape: tuple[int, ...]
    label_column: str
    label_shape: tuple[int, ...]
    label_dtype: str
    output_shape: tuple[int, ...]
    output_activation: str | None
    loss: str
    metrics: tuple[str, ...]
    input_files: list[tuple[str, int, int]]
    features_column: str = "features"
    extra_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Tuning:
    """How a Keras pipeline is searched (see :mod:`pipelines.tune_keras`): its data, and the objective.

    ``objective`` is a Keras epoch-log key of the validation split (``val_loss``, ``val_accuracy``) optimised in
    ``direction``; ``test_metric`` is a key of ``evaluate``'s result on the ``test`` set, compared with the
    champion in ``test_direction``."""

    ingest: Callable
    prepare: Callable  # (spark, config) -> Prepared
    evaluate: Callable[[DataFrame], dict]
    objective: str = "val_loss"
    direction: str = "minimize"
    test_metric: str = "loss"
    test_direction: str = "minimize"


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


def work_location(config: DeepPipelineConfig) -> str:
    """Stable per (pipeline, date, model, training, data): rerunning the same command resumes its fit."""
    keyed = config.model_dump(mode="json", include={"model", "training", "data", "pipeline"})
    digest = short_digest(keyed)
    return Store(config.store).data(config.pipeline, "work", f"run_date={run_date(config)}", digest)


def with_validation_flag(df: DataFrame, fraction: float, seed: int, key: str) -> DataFrame:
    """Deterministic hash split on a row key column."""
    bucket = F.pmod(F.xxhash64(F.lit(seed), F.col(key)), F.lit(10_000)) / 10_000.0
    return df.withColumn(VALIDATION, bucket < fraction)


def threads_per_rank(config: DeepPipelineConfig) -> int:
    return config.training.threads_per_rank or max(1, (os.cpu_count() or 1) // config.training.num_proc)


def estimator_for(config: DeepPipelineConfig, prepared: Prepared) -> KerasHorovodEstimator:
    t = config.training
    return KerasHorovodEstimator(
        featuresCol=prepared.features_column, inputShape=list(prepared.input_shape),
        labelCol=prepared.label_column, labelShape=list(prepared.label_shape), labelDtype=prepared.label_dtype,
        modelSpec=json.dumps(config.model.model_dump(mode="json")), outputShape=list(prepared.output_shape),
        outputActivation=prepared.output_activation or "", loss=prepared.loss, metrics=list(prepared.metrics),
        optimizer=t.optimizer, learningRate=t.learning_rate, batchSize=t.batch_size, epochs=t.epochs,
        numProc=t.num_proc, threadsPerRank=threads_per_rank(config), earlyStoppingPatience=t.early_stopping_patience,
        shuffleBuffer=t.shuffle_buffer, seed=t.seed, lrSchedule=t.lr_schedule, warmupEpochs=t.warmup_epochs,
        device=config.compute.device, workDir=work_location(config))


def train_and_record(spark, config: DeepPipelineConfig, prepared: Prepared,
                     evaluate: Callable[[DataFrame], dict], feature_pipeline=None) -> DeepResult:
    """Fit with Horovod, evaluate every test set, and record everything in one MLflow run."""
    import mlflow

    started = time.time()
    store = Store(config.store)
    estimator = estimator_for(config, prepared)
    estimator.validate(prepared.train)  # every parameter checked before any Spark job
    snapshot = config.model_dump(mode="json")
    with store.run(config.store.experiment or config.pipeline, run_name=f"{config.pipeline}-{run_date(config)}",
                   tags={"pipeline": config.pipeline, "run_date": run_date(config), "device": config.compute.device,
                         "spark_master": spark.sparkContext.master, "model_kind": config.model.kind}) as run:
        log_params({**{k: v for k, v in flatten(snapshot).items() if k.split(".")[0] in ("model", "training", "data")},
                    **prepared.extra_params})
        lineage = lineage_record(prepared.input_files, snapshot)
        mlflow.set_tags({"data_fingerprint": lineage["data_fingerprint"], "git_commit": lineage["git_commit"]})
        log_json(lineage, "lineage.json")

        fit_started = time.time()
        model = estimator.fit(prepared.train)
        fit_seconds = time.time() - fit_started
        for name, values in model.history.items():
            for epoch, value in enumerate(values):
                mlflow.log_metric(f"epoch_{name}", value, step=epoch)

        metrics = {"fit_seconds": fit_seconds, "epochs_trained": len(next(iter(model.history.values()), []))}
        rows = {"rows_train": sum(r["rows"] for r in estimator.rank_results)}
        for test_name, test_df in prepared.tests.items():
            scored = model.transform(test_df)
            for key, value in evaluate(scored).items():
                metrics[f"{test_name}_{key}"] = value
        mlflow.log_metrics({k: float(v) for k, v in {**metrics, **rows}.items()})

        model_file = model.getOrDefault(model.modelPath)
        mlflow.log_artifact(model_file, MODEL_ARTIFACT)
        if feature_pipeline is not None:
            with_features = local_path(join(work_location(config), "feature_pipeline"))
            feature_pipeline.write().overwrite().save(str(with_features))
            mlflow.log_artifacts(str(with_features), "feature_pipeline")
        model_uri = f"{run.info.artifact_uri}/{MODEL_ARTIFACT}/{os.path.basename(model_file)}"
        mlflow.set_tags({MODEL_COMMITTED_TAG: "true", "model_uri": model_uri})
    return DeepResult(run_id=run.info.run_id, model_uri=model_uri, metrics=metrics, history=model.history,
                      rows=rows, tracking_uri=store.tracking_uri, seconds=time.time() - started, model=model)


def classification_metrics(scored: DataFrame, label: str = "label", prediction: str = "prediction",
                           classes: int | None = None) -> dict:
    """Accuracy and macro-F1 from one aggregation over (label, predicted class) counts."""
    from features.arrays import argmax

    counts = (scored.select(F.col(label).alias("y"), argmax(F.col(prediction)).alias("p"))
              .groupBy("y", "p").count().collect())
    total = sum(r["count"] for r in counts)
    correct = sum(r["count"] for r in counts if r["y"] == r["p"])
    labels = sorted({r["y"] for r in counts} | {r["p"] for r in counts} | set(range(classes or 0)))
    f1s = []
    for c in labels:
        tp = sum(r["count"] for r in counts if r["y"] == c and r["p"] == c)
        fp = sum(r["count"] for r in counts if r["y"] != c and r["p"] == c)
        fn = sum(r["count"] for r in counts if r["y"] == c and r["p"] != c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": correct / total if total else 0.0, "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
            "rows": total}


def summary(result: DeepResult, config: DeepPipelineConfig) -> str:
    shown = " · ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items())
                       if isinstance(v, float) and k not in ("fit_seconds",))
    return "\n".join([
        f"{config.pipeline} ({config.model.kind}) · run date {run_date(config)} · MLflow run {result.run_id}"
        f" · {result.seconds:.0f} s",
        f"  trained on {result.rows['rows_train']:,} rows with {config.training.num_proc} Horovod ranks, "
        f"{result.metrics['epochs_trained']} epochs",
        f"  {shown}",
        f"  model   {result.model_uri}",
        f"  metrics {result.tracking_uri} (experiment {config.store.experiment or config.pipeline})",
    ])
