"""The model registry: versions of a pipeline's model, and the alias (``champion``) that scoring loads.

Every pipeline run and every search's refit registers its model as a new version through
:func:`promote_if_better`: the version takes the alias when no version holds it yet, or when it beats the holder
on the same test data. ``resolve`` turns what a user names (an alias, a version number, or a run's model URI)
into the model's location.

A version's ``model_uri`` tag is where its Spark model lives (``PipelineModel.load`` it); its ``source`` is the
same location when the registry accepts it. A tracking server refuses a ``file:`` source outside the run's
artifact directory, which is where models of runs with proxied artifacts live (``<store root>/models/...``,
see :func:`spark_ml_pipeline.store.tracking.commit_spark_model`): such a version's source is the run's
``model_location.json`` pointer instead, and the tag holds the location.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.store.tracking import MODEL_POINTER_ARTIFACT

MODEL_URI_TAG = "model_uri"


@dataclass
class Promotion:
    """A new version of ``name``, its ``metric`` ``value``, and whether it took ``alias`` from the holder before
    it (``champion_version``, measured ``champion_value`` on the same test rows, or ``champion_error`` when it
    could not be measured: it then stays)."""

    name: str
    alias: str
    version: str
    promoted: bool
    metric: str
    value: float
    champion_value: float | None
    champion_version: str | None
    champion_error: str | None = None

    def summary(self) -> str:
        """One line in the words of the search's summary: ``promoted`` / ``not promoted (model version N)``."""
        if self.champion_version is None:
            before = "-"
        elif self.champion_value is None:
            before = f"version {self.champion_version}, not measured ({self.champion_error}): it stays"
        else:
            before = f"{self.champion_value:.4f} (version {self.champion_version})"
        return (f"{self.name}@{self.alias} · {self.metric} {self.value:.4f} · {self.alias} before {before} · "
                f"{verdict(self.promoted, self.version)}")


def verdict(promoted: bool, version: str) -> str:
    """``promoted (model version 3)`` or ``not promoted (model version 3)``: what summaries and reports say."""
    return f"{'promoted' if promoted else 'not promoted'} (model version {version})"


def registry_description(pipeline: str, alias: str) -> str:
    """The registered model's description, written when a first version creates it."""
    return f"{pipeline} models; alias {alias!r} = best on its test split"


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` beats ``b`` when the metric is to be minimized or maximized (``direction``)."""
    return a < b if direction == "minimize" else a > b


def promote_if_better(tracking: MlflowClient, *, name: str, alias: str, model_uri: str, run_id: str, metric: str,
                      value: float, direction: str, evaluate: Callable[[str], float], progress: Callable[[str], None],
                      description: str = "", tags: Mapping[str, str] | None = None) -> Promotion:
    """Register ``model_uri`` as a new version of ``name``; move ``alias`` to it only if its ``metric`` beats the
    current alias holder's, re-evaluated by ``evaluate(model_uri)`` on the same test split."""
    try:
        tracking.get_registered_model(name)
    except MlflowException:
        tracking.create_registered_model(name, description=description)
    champion_value, champion_version, champion_error = None, None, None
    try:
        champion = tracking.get_model_version_by_alias(name, alias)
        champion_version = champion.version
    except MlflowException:
        champion = None
    if champion is not None:
        champion_uri = model_location(champion)
        try:
            champion_value = evaluate(champion_uri)
        except Exception as exc:
            champion_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            progress(f"  could not evaluate the current champion (version {champion.version}, {champion_uri}): "
                     f"{champion_error}; it stays champion")
    promoted = champion is None or (champion_value is not None and better(value, champion_value, direction))
    version_tags = {metric: f"{value:.6f}", **(tags or {}), "promoted": str(promoted).lower(),
                    f"champion_{metric}": "" if champion_value is None else f"{champion_value:.6f}",
                    MODEL_URI_TAG: model_uri}
    try:
        version = tracking.create_model_version(name, source=model_uri, run_id=run_id, tags=version_tags)
    except MlflowException as exc:
        if "Invalid model version source" not in str(exc):
            raise
        # A tracking server refuses local sources outside the run's artifacts: point at the run's pointer.
        version = tracking.create_model_version(name, source=f"runs:/{run_id}/{MODEL_POINTER_ARTIFACT}",
                                                run_id=run_id, tags=version_tags)
    if promoted:
        tracking.set_registered_model_alias(name, alias, version.version)
    against = (f"current champion v{champion_version} {metric} {champion_value:.4f} on the same split"
               if champion_value is not None else "no comparable champion")
    progress(f"  {metric} {value:.4f} vs {against} -> registered {name} v{version.version}"
             + (f", alias {alias!r} -> v{version.version}" if promoted else f", alias {alias!r} unchanged"))
    return Promotion(name=name, alias=alias, version=str(version.version), promoted=promoted, metric=metric,
                     value=value, champion_value=champion_value,
                     champion_version=None if champion_version is None else str(champion_version),
                     champion_error=champion_error)


def model_location(version) -> str:
    """Where a registered version's Spark model lives (its ``model_uri`` tag, else its source)."""
    return (version.tags or {}).get(MODEL_URI_TAG) or version.source


@dataclass
class ResolvedModel:
    uri: str  # where the Spark ML model lives
    version: str | None  # registry version, None for a run URI
    run_id: str


def resolve(tracking: MlflowClient, name: str, reference: str) -> ResolvedModel:
    """``champion`` (any alias), ``3`` (a version) or ``runs:/<run id>`` / a run id: the model it names.
    An unknown alias, version or run is one clear ConfigError."""
    if reference.startswith("runs:/") or (len(reference) == 32 and all(c in "0123456789abcdef" for c in reference)):
        run_id = reference.removeprefix("runs:/").split("/")[0]
        try:
            run = tracking.get_run(run_id)
        except MlflowException:
            raise ConfigError(f"--model {reference}: no such MLflow run") from None
        uri = run.data.tags.get("model_uri")
        if run.data.tags.get("model_committed") != "true" or not uri:
            raise ConfigError(f"--model {reference}: run {run_id} has no committed model")
        return ResolvedModel(uri=uri, version=None, run_id=run_id)
    try:
        version = (tracking.get_model_version(name, reference) if reference.isdigit()
                   else tracking.get_model_version_by_alias(name, reference))
    except MlflowException:
        what = "version" if reference.isdigit() else "alias"
        raise ConfigError(f"--model {reference}: registered model {name!r} has no {what} {reference!r} "
                          "(runs and searches of the pipeline register versions and move its alias)") from None
    return ResolvedModel(uri=model_location(version), version=str(version.version), run_id=version.run_id)
