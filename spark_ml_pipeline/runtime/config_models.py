"""Typed configuration sections shared by every pipeline (validated by pydantic, unknown keys rejected)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from spark_ml_pipeline.runtime.io import join, to_uri

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
    # Spark's stage progress bar on the console: auto = when stderr is a terminal (not in logs or CI output).
    console_progress: Literal["auto", "on", "off"] = "auto"
    # The driver JVM (and executors started on this machine) map Spark's classes from this environment's archive
    # when there is one (runtime/class_archive.py); false: they load them from the jars.
    class_archive: bool = True
    gpu: GpuConfig = GpuConfig()
    extra: dict[str, str] = {}

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not MASTER_PATTERN.match(value):
            raise ValueError("expected local, local[N], local[*], local-cluster[n,c,m], spark://host:port, "
                             "yarn or k8s://url")
        return value

    @field_validator("console_progress", mode="before")
    @classmethod
    def _yaml_on_off(cls, value):
        """YAML reads a bare on/off (a file's or the command line's) as a boolean."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

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
    # cuda in local mode with no GPU visible on this host: false fails at start (runtime.session.resolve_device),
    # true prints one warning line and runs on the CPU (device set to cpu for the whole run).
    allow_cpu_fallback: bool = False


class StoreConfig(Section):
    """The shared store: data, models and the MLflow tracking store live under ``root``."""

    root: str = Field("store", min_length=1)
    tracking_uri: Optional[str] = None  # default: sqlite database under root
    artifact_uri: Optional[str] = None  # default: artifacts/ under root
    experiment: Optional[str] = None  # default: the pipeline name

    @property
    def root_uri(self) -> str:
        return to_uri(self.root)

    def data(self, *parts: str) -> str:
        """A data location under the store root: ``<root>/data/<parts...>``."""
        return join(self.root_uri, "data", *parts)


class IngestPolicy(Section):
    """What ingest does with input that is not rows to validate (shared by every kind of pipeline)."""

    # fail: an unreadable input file (corrupt, truncated) stops the run, named; quarantine: it is skipped and
    # listed with its reason in the ingest statistics (its rows are not counted as read).
    on_unreadable_file: Literal["fail", "quarantine"] = "fail"
    # keep: identical rows are all valid; quarantine: copies after the first go to the quarantine
    # (duplicate_row) at the cost of a shuffle of the input.
    duplicates: Literal["keep", "quarantine"] = "keep"
    # More than this share of the rows read quarantined fails the ingest, naming the leading reasons with values
    # as read: the data does not fit its declaration (a date format, a JSON array ...). 1 turns the check off.
    max_quarantine_fraction: float = Field(0.5, ge=0, le=1)


class SplitConfig(Section):
    """Deterministic split into train / validation / test: by a hash of the row (default), or by time."""

    validation_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 7
    time_column: Optional[str] = None  # when set: the latest rows are the test set, the ones before validation

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> "SplitConfig":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation_fraction + test_fraction must stay below 0.9")
        return self


class XGBoostConfig(Section):
    """Parameters of ``xgboost.spark.SparkXGBRegressor`` (validated here, before any Spark job)."""

    # XGBoost workers (Spark barrier tasks). null: one in local mode, the driver itself, training on every core
    # (workers on one machine only add a histogram allreduce over loopback); on a cluster one per executor.
    num_workers: Optional[PositiveInt] = None
    # Threads per worker. null: the cores over the workers in local mode; spark.task.cpus on a cluster.
    threads_per_worker: Optional[PositiveInt] = None
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
    # Feature name -> +1 (the prediction never falls as it grows), -1 (never rises) or 0: prior knowledge that
    # removes variance (a taxi fare grows with the distance). Needs named feature columns, not one vector.
    monotone_constraints: dict[str, Literal[-1, 0, 1]] = {}
    seed: int = 0


class ParamSpec(Section):
    """One hyperparameter of a search (``tune.space.<name>``).

    ``int`` / ``float`` take ``low``..``high`` (``log: true`` or type ``logfloat`` for a log scale, ``step``
    for a grid of steps); ``categorical`` takes ``choices``. ``key`` is the configuration key the value sets
    (default ``model.<name>``; ``""`` sets nothing, e.g. a selector other parameters depend on). ``when``
    makes the parameter conditional: ``{other_param: value or [values]}``. ``grid`` lists the values the
    grid sampler uses for an ``int``/``float`` parameter (categoricals use their ``choices``).
    """

    type: Literal["int", "float", "logfloat", "categorical"]
    low: Optional[float] = None
    high: Optional[float] = None
    step: Optional[float] = None
    log: bool = False
    choices: Optional[list[Any]] = None
    grid: Optional[list[Any]] = None
    key: Optional[str] = None
    when: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> "ParamSpec":
        if self.type == "logfloat":
            self.__dict__["type"], self.__dict__["log"] = "float", True
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            if any(v is not None for v in (self.low, self.high, self.step)) or self.log:
                raise ValueError("a categorical parameter takes 'choices', not low/high/step/log")
            if self.grid is not None:
                raise ValueError("a categorical parameter's grid is its 'choices'; remove 'grid'")
            return self
        if self.choices is not None:
            raise ValueError(f"an {self.type} parameter takes low/high, not 'choices' (use type: categorical)")
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} parameter needs both 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is greater than high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0 (got low={self.low:g})")
        if self.log and self.step is not None:
            raise ValueError("'step' and a log scale cannot be combined")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0 (got {self.step:g})")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and value != int(value):
                    raise ValueError(f"an int parameter needs an integer {name} (got {value:g})")
        for value in self.grid or []:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not self.low <= value <= self.high:
                raise ValueError(f"grid value {value!r} is not a number within [{self.low:g}, {self.high:g}]")
        return self


class TuneConfig(Section):
    """Hyperparameter search (``jobs/tune.py``): budget, engine, where the study lives, the space."""

    n_trials: PositiveInt = 20  # trials that finish (COMPLETE or PRUNED), counted across restarts
    parallelism: PositiveInt = 1  # trials at once; the cluster's slots are split between them
    timeout: Optional[float] = Field(None, gt=0)  # seconds; no new trial starts after it
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "successive_halving", "none"] = "median"
    pruner_startup_trials: int = Field(3, ge=0)  # median pruner: finished trials before it prunes
    seed: int = 0
    storage: Optional[str] = None  # default: journal file <store root>/optuna/<study>.journal; or an RDB URL
    # RDB storage (several drivers on one study): each running trial's heartbeat period; a trial silent for
    # 3 periods (its driver died) is failed and queued again by another driver. A journal: one driver per study.
    heartbeat_seconds: PositiveInt = 10
    study_name: Optional[str] = None  # default: <pipeline>-<hash of the search definition>
    budgets: list[PositiveInt] = []  # pruning rungs (XGBoost rounds); default: n_estimators/8, /4, /2, /1
    max_failures: PositiveInt = 5  # failed trials (exceptions) in one invocation before the search stops
    promote: bool = True  # refit the best, compare with the current champion, register / move the alias (registry)
    report: bool = True
    space: dict[str, ParamSpec] = {}


class RegistryConfig(Section):
    """The model registry: the registered model a pipeline's runs and searches add versions to, and its alias.

    A run (and a search's refit) registers its model as a new version; the version takes ``alias`` when no
    version holds it yet, or when it beats the holder on the same test rows. Scoring loads ``alias`` by default."""

    name: Optional[str] = None  # the registered model; default: the pipeline's name
    alias: str = Field("champion", min_length=1)
    # false: a pipeline run records its model but registers no version (a search still does: tune.promote).
    promote_runs: bool = True


class ReportConfig(Section):
    """The HTML report every run leaves (``report.html`` in its MLflow run, next to its model)."""

    enabled: bool = True
    sample_rows: PositiveInt = 5000  # test rows drawn in the scatter, residual and curve figures


def run_date(config: "PipelineConfigBase") -> str:
    """The run's date partition: the configured ``run_date``, else today (UTC)."""
    return (config.run_date or datetime.now(timezone.utc).date()).isoformat()


class PipelineConfigBase(Section):
    """Sections every pipeline has; a named pipeline adds its own."""

    pipeline: str  # the name: its conf file conf/pipelines/<pipeline>.yaml
    kind: str  # the pipeline package that runs it (pipelines/<kind>/); default: the name
    run_date: Optional[date] = None  # partition of this run's outputs; default: today (UTC)
    spark: SparkConfig = SparkConfig()
    compute: ComputeConfig = ComputeConfig()
    store: StoreConfig = StoreConfig()
    tune: TuneConfig = TuneConfig()
    registry: RegistryConfig = RegistryConfig()
    report: ReportConfig = ReportConfig()

    @property
    def registered_model(self) -> str:
        """The registered model the pipeline's versions go to: ``registry.name``, default the pipeline's name."""
        return self.registry.name or self.pipeline
