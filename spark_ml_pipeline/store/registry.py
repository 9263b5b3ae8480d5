"""The model registry: versions of a pipeline's model, and the alias (``champion``) that scoring loads.

A new version gets the alias only when it beats the current holder on the same test data; ``resolve`` turns
what a user names (an alias, a version number, or a run's model URI) into the model's location.

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
    version: str
    promoted: bool
    champion_value: float | None
    champion_version: str | None


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
    champion_value, champion_version = None, None
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
            progress(f"  could not evaluate the current champion (version {champion.version}, {champion_uri}): "
                     f"{type(exc).__name__}: {str(exc)[:200]}; it stays champion")
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
    return Promotion(version=str(version.version), promoted=promoted, champion_value=champion_value,
                     champion_version=champion_version)


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
                          "(a search registers versions and moves the 'champion' alias)") from None
    return ResolvedModel(uri=model_location(version), version=str(version.version), run_id=version.run_id)
