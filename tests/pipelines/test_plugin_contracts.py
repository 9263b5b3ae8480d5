"""Every registered pipeline meets the written contracts of its plugin points, for every kind the pipelines
package holds and every conf file of that kind: its definition's parts (``runtime.discovery``: Stage, Summary,
Factory), its tuner (``tune.tuner.Tuner``) and its scorer (``score.scorer.Scorer``); and a plugin that breaks
its contract is refused by the search and by batch scoring before any work, naming what it lacks."""
from __future__ import annotations

from pathlib import Path

import pytest

from spark_ml_pipeline.runtime.config import known_pipelines, load_config
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.contracts import unmet
from spark_ml_pipeline.runtime.discovery import Factory, Stage, Summary, find_pipeline, known_kinds
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.score.batch import score
from spark_ml_pipeline.score.scorer import PipelineScorer, Scorer
from spark_ml_pipeline.tune.search import tune
from spark_ml_pipeline.tune.tuner import Tuner

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture(scope="module")
def configs_by_kind(tmp_path_factory) -> dict[str, list[PipelineConfigBase]]:
    """Every shipped conf file's configuration, by kind."""
    store = tmp_path_factory.mktemp("contracts-store")
    found: dict[str, list[PipelineConfigBase]] = {}
    for name in known_pipelines(CONF_DIR):
        config = load_config(name, ["local"], [f"store.root={store}"], CONF_DIR)
        found.setdefault(config.kind, []).append(config)
    return found


@pytest.mark.parametrize("kind", known_kinds())
def test_definition_parts_meet_their_protocols(kind):
    definition = find_pipeline(kind)
    assert definition.kind == kind
    assert isinstance(definition.config, type) and issubclass(definition.config, PipelineConfigBase)
    assert definition.stages and "run" in definition.stages
    for name, stage in definition.stages.items():
        assert unmet(stage, Stage) == [], f"{kind} stage {name}"
    assert unmet(definition.summary, Summary) == []
    for plugin in (definition.tuner, definition.scorer, definition.ingest_check):
        if plugin is not None:
            assert unmet(plugin, Factory) == []


@pytest.mark.parametrize("kind", known_kinds())
def test_every_tuner_and_scorer_meets_its_protocol(spark, configs_by_kind, kind):
    definition = find_pipeline(kind)
    configs = configs_by_kind.get(kind)
    assert configs, f"no conf file of kind {kind}: its plugins would go unchecked"
    for config in configs:
        if definition.tuner is not None:
            tuner = definition.tuner(spark, config)
            assert isinstance(tuner, Tuner) and unmet(tuner, Tuner) == [], config.pipeline
        if definition.scorer is not None:
            scorer = definition.scorer(spark, config)
            assert isinstance(scorer, Scorer) and unmet(scorer, Scorer) == [], config.pipeline


class HalfTuner:
    """A tuner whose fit_trial forgets the trial context, and which has no refit."""

    metric, direction, test_metric, test_direction = "validation_rmse", "minimize", "test_rmse", "minimize"
    curve_metrics = ("train_rmse", "validation_rmse")
    worker_noun, budget_attr, budget_name, param_sections = "worker", "best_rounds", "rounds", ["model"]

    def prepare(self) -> dict:
        return {}

    def fit_trial(self, trial_config) -> dict:
        return {"value": 0.0}

    def evaluate(self, model_uri: str) -> float:
        return 0.0


def test_a_plugin_that_breaks_its_protocol_is_refused_before_any_work(tmp_path):
    assert unmet(HalfTuner(), Tuner) == [
        "'param_sections' is list, not tuple",
        "fit_trial(trial_config) does not take fit_trial(trial_config, context)",
        "no method refit(best_config, best_attrs)",
    ]
    config = load_config("taxi_fare", ["local"], [f"store.root={tmp_path}"], CONF_DIR)
    with pytest.raises(ConfigError, match=r"pipeline 'taxi_fare': its tuner does not meet the Tuner protocol "
                                          r"\(spark_ml_pipeline.tune.tuner\): 'param_sections' is list"):
        tune(None, config, lambda spark, config: HalfTuner())  # no Spark: refused before the study opens
    blind = PipelineScorer(read=lambda spark: None, outputs=["prediction"])  # reads no input URI
    with pytest.raises(ConfigError, match=r"its scorer does not meet the Scorer protocol .*: read\(spark\) does "
                                          r"not take read\(spark, source\)"):
        score(None, config, blind, "champion", str(tmp_path / "in"), str(tmp_path / "out"))
    assert not list(tmp_path.iterdir())  # nothing was written
