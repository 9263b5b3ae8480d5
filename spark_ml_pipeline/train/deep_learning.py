"""Shared plumbing of the Keras pipelines: their configuration, the data they hand the trainer, the estimator.

A named deep-learning pipeline supplies a :class:`Prepared` (Spark DataFrames with model-ready array columns,
shapes, loss, and the feature stages that made them) and an evaluation function;
:func:`spark_ml_pipeline.runs.keras_run.train_and_record` fits and records it the same way for all of them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from pydantic import Field, PositiveInt, model_validator
from pyspark.ml import Transformer
from pyspark.sql import DataFrame

from spark_ml_pipeline.runtime.config_models import PipelineConfigBase, Section, run_date
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import short_digest
from spark_ml_pipeline.train.keras_estimator import DEFAULT_RANKS, KerasEstimator
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.zoo import ModelSpec
from spark_ml_pipeline.train.rank_backends import Backend


class TrainingSection(KerasTrainingSettings):
    """The ``training`` section: how every rank trains (:class:`KerasTrainingSettings`, whose fields it inherits),
    and how the pipeline launches the fit and splits its data."""

    # How ranks train together: Horovod, or TensorFlow's MultiWorkerMirroredStrategy in Spark barrier tasks.
    backend: Backend = "horovod"
    num_proc: PositiveInt = DEFAULT_RANKS
    threads_per_rank: Optional[PositiveInt] = None  # default: cores // num_proc
    loss: Optional[str] = None  # default: the pipeline's (e.g. mse); relative_l2 / relative_h1 for fields
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)


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
    # Tests on another grid than training (a resolution-free model): test name -> that grid's input shape.
    test_input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    extra_params: dict = field(default_factory=dict)
    # Fitted stages that turn the pipeline's ingested rows into ``features_column``: committed with the Keras
    # model as one PipelineModel, so scoring applies exactly this transform.
    feature_stages: list[Transformer] = field(default_factory=list)


@dataclass(frozen=True)
class Tuning:
    """How a Keras pipeline is searched (see :mod:`spark_ml_pipeline.tune.keras_tuner`): its data, and the objective.

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


def work_location(config: DeepPipelineConfig) -> str:
    """Stable per (pipeline, date, model, training, data): rerunning the same command resumes its fit."""
    keyed = config.model_dump(mode="json", include={"model", "training", "data", "pipeline"})
    digest = short_digest(keyed)
    return config.store.data(config.pipeline, "work", f"run_date={run_date(config)}", digest)


def threads_per_rank(config: DeepPipelineConfig) -> int:
    return config.training.threads_per_rank or max(1, (os.cpu_count() or 1) // config.training.num_proc)


def check_parameters(estimator: KerasEstimator, dataset: DataFrame) -> None:
    """The estimator's check of every parameter before any Spark job, as a configuration error: its parameters
    come from the configuration's ``model`` and ``training`` sections, so a misfit is one line and exit code 2
    (e.g. ``augment_channels=5 exceeds the input's 3 channel(s)``), not a traceback."""
    try:
        estimator.validate(dataset)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def estimator_for(config: DeepPipelineConfig, prepared: Prepared) -> KerasEstimator:
    t = config.training
    return KerasEstimator(
        featuresCol=prepared.features_column, inputShape=list(prepared.input_shape),
        labelCol=prepared.label_column, labelShape=list(prepared.label_shape), labelDtype=prepared.label_dtype,
        modelSpec=json.dumps(config.model.model_dump(mode="json")), outputShape=list(prepared.output_shape),
        outputActivation=prepared.output_activation or "", loss=t.loss or prepared.loss,
        metrics=list(prepared.metrics), trainingSettings=KerasTrainingSettings.from_section(t),
        backend=t.backend, numProc=t.num_proc, threadsPerRank=threads_per_rank(config),
        device=config.compute.device, workDir=work_location(config))


