"""Batch scoring: a registered model applied to new files, with the pipeline's own validation and a quarantine.

A pipeline that can be scored declares a ``scorer(spark, config) -> Scorer``
(:mod:`spark_ml_pipeline.score.scorer`): how to read and validate new input (the ingest rules, labels optional)
and which model outputs to keep. :func:`score` resolves the model through the registry (``champion``, which
every run and search moves to the best version on its test rows, or any alias, a version number, or
``runs:/<run id>``), loads the committed Spark ML ``PipelineModel``, applies it to the valid rows, and commits,
for the run date ``D``::

    <output>/run_date=D/                  predictions: keys, outputs, model_version, run_id (Parquet)
    <output>/run_date=D/_scoring.json     the stats: rows in / scored / quarantined by reason, the model
    <output>/_quarantine/run_date=D/      rejected input rows with a ``reason`` column (Parquet)

Each location is written under a hidden temporary sibling and renamed into place only after
``rows_in == rows_scored + rows_quarantined`` has been checked on what was written (the quarantine first, the
predictions with their stats last), so rerunning a date replaces exactly that date and other dates are
untouched. Spark skips ``_``-prefixed paths, so ``spark.read.parquet(<output>)`` reads every date's
predictions with ``run_date`` as a partition column.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.errors import AnalysisException
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.quarantine import REASON
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase, run_date
from spark_ml_pipeline.runtime.contracts import unmet
from spark_ml_pipeline.runtime.discovery import Factory, PipelineDefinition
from spark_ml_pipeline.runtime.errors import ConfigError, DataError
from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, is_local_uri, join, local_path, to_uri
from spark_ml_pipeline.score.report import REPORT_FILE, scoring_report, training_profile
from spark_ml_pipeline.score.scorer import Scorer, ScoringInput
from spark_ml_pipeline.store.registry import ResolvedModel, resolve
from spark_ml_pipeline.store.tracking import Store

QUARANTINE_DIR = "_quarantine"
STATS_FILE = "_scoring.json"
MODEL_VERSION, RUN_ID, RUN_DATE = "model_version", "run_id", "run_date"
LOCATION_ARGUMENTS = ("input", "output")
_KEYS = "__scoring_keys"  # the keys ride through the model in one struct, so no stage can alter them


@dataclass
class ScoreResult:
    pipeline: str
    model_reference: str  # what the user named: champion, 3, runs:/<id>
    model_uri: str
    model_version: str | None  # None when scored from a run URI
    run_id: str
    run_date: str
    input: str
    predictions: str  # <output>/run_date=D
    quarantine: str  # <output>/_quarantine/run_date=D
    rows_in: int
    rows_scored: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)  # predictions vs the training run's (see score.report)
    report: str | None = None  # <output>/run_date=D/_report.html
    seconds: float = 0.0


# --- the command line's locations -------------------------------------------------------------------------

@dataclass(frozen=True)
class Locations:
    input: str
    output: str


def split_locations(arguments: Sequence[str]) -> tuple[Locations, list[str]]:
    """``input=URI`` and ``output=URI`` taken off the ``key=value`` arguments (they are not configuration
    keys); the rest are configuration overrides. Either one missing is a ConfigError."""
    found: dict[str, str] = {}
    rest = []
    for item in arguments:
        key, sep, value = item.partition("=")
        if sep and key.strip() in LOCATION_ARGUMENTS:
            if not value.strip():
                raise ConfigError(f"command line: {key.strip()}= needs a path or URI")
            found[key.strip()] = value.strip()
        else:
            rest.append(item)
    missing = [name for name in LOCATION_ARGUMENTS if name not in found]
    if missing:
        raise ConfigError("command line: missing " + " and ".join(f"{name}=URI" for name in missing)
                          + " (the files to score and where predictions go)")
    return Locations(input=found["input"], output=found["output"]), rest


# --- the model ------------------------------------------------------------------------------------------

def tracking_client(config: PipelineConfigBase, reference: str) -> MlflowClient:
    """The store's MLflow client; a local store without a tracking database yet is a clear error (instead of
    creating an empty one)."""
    store = config.store
    if store.tracking_uri is None and is_local_uri(store.root_uri):
        root = local_path(store.root_uri)
        if not (root / "mlflow.db").is_file():  # Store.tracking_uri's default database
            raise ConfigError(f"--model {reference}: store.root {root} holds no MLflow tracking database "
                              f"(mlflow.db); train or tune {config.pipeline} first, or set store.root")
    return MlflowClient(Store(store).tracking_uri)


def resolve_model(config: PipelineConfigBase, reference: str) -> ResolvedModel:
    """The model ``reference`` names in the pipeline's registry (an alias, a version, ``runs:/<run id>``); a run
    recorded for another pipeline is refused."""
    tracking = tracking_client(config, reference)
    resolved = resolve(tracking, config.registered_model, reference)
    try:
        recorded_for = tracking.get_run(resolved.run_id).data.tags.get("pipeline") if resolved.run_id else None
    except MlflowException:
        recorded_for = None
    if recorded_for and recorded_for != config.pipeline:
        raise ConfigError(f"--model {reference}: run {resolved.run_id} is a model of pipeline {recorded_for!r}, "
                          f"not {config.pipeline!r}")
    return resolved


def load_model(model: ResolvedModel, reference: str) -> PipelineModel:
    try:
        return PipelineModel.load(model.uri)
    except Exception as exc:  # Py4J / Hadoop errors: name the model, not the stack
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DataError(f"--model {reference}: cannot load the Spark ML model at {model.uri} ({first})") from None


def scorer_of(definition: PipelineDefinition, config: PipelineConfigBase) -> Factory[Scorer]:
    """The pipeline's scorer factory; a pipeline that declares none is a ConfigError."""
    if definition.scorer is None:
        raise ConfigError(f"pipeline {config.pipeline!r} (kind {config.kind}) declares no scorer: "
                          "it cannot be batch-scored")
    return definition.scorer


# --- scoring --------------------------------------------------------------------------------------------

def predictions(model: PipelineModel, scoring: ScoringInput, outputs: Sequence[str], resolved: ResolvedModel,
                reference: str) -> DataFrame:
    """Keys + outputs (ML vectors as array<double>) + model_version + run_id of every valid row."""
    missing = [k for k in scoring.keys if k not in scoring.valid.columns]
    if missing:
        raise DataError(f"scoring input has no key column(s) {', '.join(missing)} "
                        f"(columns: {', '.join(scoring.valid.columns)})")
    valid = scoring.valid.withColumn(_KEYS, F.struct(*[F.col(f"`{k}`") for k in scoring.keys]))
    try:
        scored = model.transform(valid)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["analysis error"])[0][:300]
        raise DataError(f"--model {reference} ({resolved.uri}) does not fit the scoring input: {first}") from None
    absent = [o for o in outputs if o not in scored.columns]
    if absent:
        raise DataError(f"--model {reference} ({resolved.uri}) produced no column(s) {', '.join(absent)} "
                        f"(it produced: {', '.join(c for c in scored.columns if c != _KEYS)})")
    types = {f.name: f.dataType for f in scored.schema.fields}
    kept = [vector_to_array(F.col(o)).alias(o) if isinstance(types[o], VectorUDT) else F.col(o) for o in outputs]
    return scored.select(*[F.col(_KEYS)[k].alias(k) for k in scoring.keys], *kept,
                         F.lit(resolved.version).cast("string").alias(MODEL_VERSION),
                         F.lit(resolved.run_id).cast("string").alias(RUN_ID))


def score(spark: SparkSession, config: PipelineConfigBase, scorer: Scorer,
          model_reference: str | ResolvedModel, input_uri: str, output_uri: str,
          reference_name: str | None = None) -> ScoreResult:
    """Score ``input_uri`` with the model ``model_reference`` names (or an already resolved model) and commit
    predictions, quarantine and stats under ``output_uri`` for the run date (see the module docstring)."""
    started = time.time()
    gaps = unmet(scorer, Scorer)
    if gaps:
        raise ConfigError(f"pipeline {config.pipeline!r}: its scorer does not meet the Scorer protocol "
                          f"(spark_ml_pipeline.score.scorer): {'; '.join(gaps)}")
    if isinstance(model_reference, ResolvedModel):
        resolved, reference = model_reference, reference_name or model_reference.uri
    else:
        resolved, reference = resolve_model(config, model_reference), model_reference
    model = load_model(resolved, reference)
    source, output = to_uri(input_uri), to_uri(output_uri).rstrip("/")
    if source.rstrip("/") == output or output.startswith(source.rstrip("/") + "/"):
        raise ConfigError(f"output={output_uri}: must not be the input or lie inside it ({input_uri})")
    scoring = scorer.read(spark, source)
    if REASON not in scoring.quarantine.columns:
        raise DataError(f"{source}: the scorer's quarantine has no {REASON!r} column")
    scored = predictions(model, scoring, scorer.outputs, resolved, reference)

    date = run_date(config)
    partition = f"{RUN_DATE}={date}"
    target, quarantine_target = join(output, partition), join(output, QUARANTINE_DIR, partition)
    with atomic_output(spark, target) as temporary, atomic_output(spark, quarantine_target) as quarantined:
        scored.write.parquet(temporary)
        scoring.quarantine.write.parquet(quarantined)
        rows_scored = spark.read.parquet(temporary).count()
        by_reason = {row[REASON]: row["count"]
                     for row in spark.read.parquet(quarantined).groupBy(REASON).count().collect()}
        rows_quarantined = sum(by_reason.values())
        if rows_scored + rows_quarantined != scoring.rows_in:
            raise DataError(f"{source}: read {scoring.rows_in} rows but accounted for {rows_scored} scored + "
                            f"{rows_quarantined} quarantined; refusing to commit")
        result = ScoreResult(
            pipeline=config.pipeline, model_reference=reference, model_uri=resolved.uri,
            model_version=resolved.version, run_id=resolved.run_id, run_date=date, input=source,
            predictions=target, quarantine=quarantine_target, rows_in=scoring.rows_in, rows_scored=rows_scored,
            rows_quarantined=rows_quarantined, quarantined_by_reason=dict(sorted(by_reason.items())),
            keys=list(scoring.keys), outputs=list(scorer.outputs))
        if config.report.enabled and rows_scored:
            write_report(spark, config, result, spark.read.parquet(temporary), join(temporary, REPORT_FILE))
            result.report = join(target, REPORT_FILE)
        result.seconds = round(time.time() - started, 3)
        HadoopFS(spark).write_text(join(temporary, STATS_FILE), json.dumps(asdict(result), indent=2))
    # Leaving the block renamed the quarantine into place, then the predictions with their stats.
    result.seconds = time.time() - started
    return result


def write_report(spark: SparkSession, config: PipelineConfigBase, result: ScoreResult, scored: DataFrame,
                 location: str) -> None:
    """The scored date's report (see :mod:`spark_ml_pipeline.score.report`) at ``location``."""
    try:
        client = tracking_client(config, result.model_reference)
    except ConfigError:  # a model given by path, with no tracking store to compare against
        client = None
    reference, reference_name = training_profile(client, result.run_id)
    model = (f"version {result.model_version}" if result.model_version else "run") + f" (run {result.run_id})"
    report, result.drift = scoring_report(
        scored, result.outputs, {"pipeline": result.pipeline, "run date": result.run_date,
                                 "model": f"{result.model_reference}: {model}", "rows read": result.rows_in,
                                 "scored": result.rows_scored, "quarantined": result.rows_quarantined},
        result.quarantined_by_reason, reference, reference_name, config.report.sample_rows)
    HadoopFS(spark).write_text(location, report.render())


def read_stats(spark: SparkSession, output_uri: str, date: str) -> dict:
    """The stats of one scored date (``<output>/run_date=D/_scoring.json``)."""
    return json.loads(HadoopFS(spark).read_text(join(output_uri, f"{RUN_DATE}={date}", STATS_FILE)))


def summary(result: ScoreResult) -> str:
    model = (f"registered version {result.model_version}, MLflow run {result.run_id}" if result.model_version
             else f"MLflow run {result.run_id}, not a registered version")
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in result.quarantined_by_reason.items())
    return "\n".join([
        f"score {result.pipeline} · model {result.model_reference} ({model}) · "
        f"run date {result.run_date} · {result.seconds:.0f} s",
        f"  rows read {result.rows_in:,} · scored {result.rows_scored:,} · quarantined {result.rows_quarantined:,}"
        + (f" ({reasons})" if reasons else ""),
        f"  predictions {result.predictions}",
        f"  quarantine  {result.quarantine}",
        f"  stats       {join(result.predictions, STATS_FILE)}",
        *([f"  report      {result.report}"
           + (" (" + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in result.drift.items()) + ")"
              if result.drift else "")] if result.report else []),
    ])

