"""Finding the named pipelines: each package under ``pipelines/`` declares itself once as ``PIPELINE``.

The library never imports a named pipeline statically (import-linter checks it); it imports the package a
configuration's ``kind`` names, by name, when a job asks for it. A new kind is a new package with a
``PIPELINE``; a new data set of an existing kind (``kind: tabular``) is only a conf file.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Protocol, Sequence, TypeVar

from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.errors import ConfigError

if TYPE_CHECKING:  # annotations only: finding a pipeline starts no JVM
    from pyspark.sql import SparkSession

PIPELINES_PACKAGE_ENV = "SML_PIPELINES_PACKAGE"
DEFAULT_PIPELINES_PACKAGE = "pipelines"


Plugin = TypeVar("Plugin", covariant=True)


class Stage(Protocol):
    """One stage of a pipeline (``ingest``, ``train``, ``run`` ...): its result is what ``summary`` reads."""

    def __call__(self, spark: SparkSession, config: PipelineConfigBase) -> Any: ...


class Summary(Protocol):
    """The lines a job prints about a stage's result."""

    def __call__(self, result: Any, config: PipelineConfigBase) -> str: ...


class Factory(Protocol[Plugin]):
    """Builds a pipeline's plugin for one configuration: its tuner (``Factory[Tuner]``, the protocol
    :class:`spark_ml_pipeline.tune.tuner.Tuner`) or its scorer (``Factory[Scorer]``,
    :class:`spark_ml_pipeline.score.scorer.Scorer`). Those protocols live where they are consumed, above this
    layer; the search and batch scoring check what a factory built against them."""

    def __call__(self, spark: SparkSession, config: PipelineConfigBase) -> Plugin: ...


@dataclass(frozen=True)
class Deferred:
    """A stage or plugin named by ``"module:attribute"`` and imported when first called, so a job imports only
    what the stage it runs needs: an ingest does not import XGBoost, MLflow, scikit-learn or TensorFlow (2.5 s
    of a short job's start, docs/benchmarks.md). Its signature is its target's, for the contract checks."""

    target: str

    def resolve(self) -> Any:
        module_name, _, name = self.target.partition(":")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise ConfigError(f"{self.target}: {module_name} has no {name!r}")
        return getattr(module, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())


@dataclass(frozen=True)
class PipelineDefinition:
    """What a named pipeline is: its configuration model, its stages, and how it is searched and scored.

    ``stages`` maps a stage name (``ingest``, ``train``, ``run`` ...) to ``(spark, config) -> result``;
    ``summary(result, config)`` is the lines a job prints; ``tuner(spark, config)`` builds the search's tuner
    (None: not searchable); ``scorer(spark, config)`` builds what batch scoring needs (None: not scorable);
    ``ingest_check(spark, config)`` opens, as a context manager, the inputs its ingest reads, each with the
    ingest's own tagging (:class:`spark_ml_pipeline.ingest.quarantine.IngestInput`), for ``jobs.ingest --check``
    (None: no ingest check). Stages and plugins are :class:`Deferred` (``"module:attribute"``), so declaring a
    pipeline imports only its configuration model.
    """

    kind: str
    config: type[PipelineConfigBase]
    stages: Mapping[str, Stage]
    summary: Summary
    tuner: Factory[Any] | None = None
    scorer: Factory[Any] | None = None
    ingest_check: Factory[ContextManager[Sequence[Any]]] | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def whole_run_pipeline(kind: str, config: type[PipelineConfigBase], module: str, *, description: str,
                       summary: str | None = None, scorer: str | None = None) -> PipelineDefinition:
    """The declaration of a pipeline whose train stage is its whole run (its ingest, then the fit): ``ingest``,
    ``run`` and its search's ``tuner`` from ``module``; ``summary`` and ``scorer`` as ``"module:name"`` (default
    summary: ``module``'s). The Keras pipelines are declared so."""
    return PipelineDefinition(
        kind=kind, config=config, description=description,
        stages={"ingest": Deferred(f"{module}:ingest"), "train": Deferred(f"{module}:run"),
                "run": Deferred(f"{module}:run")},
        summary=Deferred(summary or f"{module}:summary"), tuner=Deferred(f"{module}:tuner"),
        scorer=Deferred(scorer) if scorer else None)


def pipelines_package() -> str:
    return os.environ.get(PIPELINES_PACKAGE_ENV, DEFAULT_PIPELINES_PACKAGE)


def known_kinds() -> list[str]:
    """The kinds the pipelines package holds (its sub-packages), without importing them."""
    package = importlib.import_module(pipelines_package())
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.ispkg)


def find_pipeline(kind: str, where: str = "") -> PipelineDefinition:
    """The declaration of pipeline kind ``kind`` (imports only that pipeline's package)."""
    kinds = known_kinds()
    if kind not in kinds:
        raise ConfigError(f"{where + ': ' if where else ''}unknown pipeline kind {kind!r} "
                          f"(known: {', '.join(kinds)})")
    module = importlib.import_module(f"{pipelines_package()}.{kind}")
    definition = getattr(module, "PIPELINE", None)
    if not isinstance(definition, PipelineDefinition):
        raise ConfigError(f"{module.__name__}: declares no PIPELINE (a PipelineDefinition)")
    return definition
