"""Typed configuration sections shared by every pipeline (validated by pydantic, unknown keys rejected)."""
from __future__ import annotations

import re
from datetime import date
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

MASTER_PATTERN = re.compile(
    r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^\s]+|yarn|k8s://[^\s]+)$")
MEMORY_PATTERN = re.compile(r"^\d+[kmgtKMGT]?$")


class Section(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GpuConfig(Section):
    """Spark GPU resource scheduling (only applied when ``compute.device`` is ``cuda``)."""

    amount_per_executor: PositiveInt = 1
    amount_per_task: float = Field(1.0, gt=0, le=1)
    discovery_script: str = "scripts/get_gpus_resources.sh"


class SparkConfig(Section):
    master: str = "local[*]"
    app_name: str = "spark-ml-pipeline"
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    executor_cores: Optional[PositiveInt] = None
    cores_max: Optional[PositiveInt] = None
    shuffle_partitions: PositiveInt = 8
    timezone: str = "UTC"
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "ERROR"
    arrow: bool = True
    ui: bool = False
    gpu: GpuConfig = GpuConfig()
    extra: dict[str, str] = {}

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not MASTER_PATTERN.match(value):
            raise ValueError("expected local, local[N], local[*], local-cluster[n,c,m], spark://host:port, "
                             "yarn or k8s://url")
        return value

    @field_validator("driver_memory", "executor_memory")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not MEMORY_PATTERN.match(value):
            raise ValueError("expected a JVM memory size such as 512m or 2g")
        return value

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")


class ComputeConfig(Section):
    """Where numerical work runs. ``cuda`` selects XGBoost/TensorFlow GPU paths and Spark GPU scheduling."""

    device: Literal["cpu", "cuda"] = "cpu"


class StoreConfig(Section):
    """The shared store: data, models and the MLflow tracking store live under ``root``."""

    root: str = "store"
    tracking_uri: Optional[str] = None  # default: sqlite database under root
    artifact_uri: Optional[str] = None  # default: artifacts/ under root
    experiment: Optional[str] = None  # default: the pipeline name


class SplitConfig(Section):
    """Deterministic hash split into train / validation / test."""

    validation_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 7

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> "SplitConfig":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation_fraction + test_fraction must stay below 0.9")
        return self


class XGBoostConfig(Section):
    """Parameters of ``xgboost.spark.SparkXGBRegressor`` (validated here, before any Spark job)."""

    num_workers: PositiveInt = 2
    n_estimators: PositiveInt = 300
    max_depth: int = Field(8, ge=1, le=20)
    learning_rate: float = Field(0.1, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(1.0, gt=0, le=1)
    colsample_bytree: float = Field(1.0, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    max_bin: int = Field(256, ge=2)
    tree_method: Literal["hist", "approx"] = "hist"
    early_stopping_rounds: Optional[PositiveInt] = 20
    seed: int = 0


class PipelineConfigBase(Section):
    """Sections every pipeline has; a named pipeline adds its own."""

    pipeline: str
    run_date: Optional[date] = None  # partition of this run's outputs; default: today (UTC)
    spark: SparkConfig = SparkConfig()
    compute: ComputeConfig = ComputeConfig()
    store: StoreConfig = StoreConfig()
