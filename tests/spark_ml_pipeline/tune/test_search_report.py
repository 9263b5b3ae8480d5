"""The search report on real Optuna studies (journal files) and a real MLflow store (sqlite): interactive
figures, plotly.js embedded once, the parameters that matter, the static history PNG; no Spark needed."""
import json
import math
import re
import struct
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from spark_ml_pipeline.report.document import plotly_js
from spark_ml_pipeline.tune.report import HISTORY_PNG, TOP_PARAMS, rank_params, search_figures, write_report
from spark_ml_pipeline.tune.search import TuneResult
from spark_ml_pipeline.tune.xgboost_tuner import XGBoostTuner

SPACE = {  # 12 parameters: floats, log floats, ints (one log), categoricals
    "learning_rate": FloatDistribution(0.01, 0.3, log=True),
    "min_child_weight": FloatDistribution(0.5, 20.0, log=True),
    "reg_lambda": FloatDistribution(0.1, 10.0, log=True),
    "reg_alpha": FloatDistribution(0.001, 1.0, log=True),
    "subsample": FloatDistribution(0.5, 1.0),
    "colsample_bytree": FloatDistribution(0.5, 1.0),
    "gamma": FloatDistribution(0.0, 5.0),
    "max_depth": IntDistribution(3, 10),
    "max_bin": IntDistribution(64, 512, log=True),
    "n_estimators": IntDistribution(50, 400, step=50),
    "tree_method": CategoricalDistribution(["hist", "approx"]),
    "grow_policy": CategoricalDistribution(["depthwise", "lossguide"]),
}
PRUNED_TRIALS = {3, 9}
ROUNDS = 40


def _sample(rng, distribution):
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[rng.integers(len(distribution.choices))]
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            return int(round(math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high)))))
        return int(rng.integers(distribution.low // distribution.step, distribution.high // distribution.step + 1)
                   * distribution.step)
    if distribution.log:
        return float(math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high))))
    return float(rng.uniform(distribution.low, distribution.high))


def _rmse(params) -> float:
    """The learning rate and the depth matter most; the rest a little or not at all."""
    return (3.0 + 4.0 * abs(math.log10(params["learning_rate"] / 0.1)) + 0.3 * abs(params["max_depth"] - 6)
            + 0.4 * (1 - params["subsample"]) + 0.2 * (params["tree_method"] == "approx"))


def _curve(final: float, rounds: int = ROUNDS) -> list[float]:
    return [final * (1 + 4.0 * math.exp(-r / 6)) for r in range(1, rounds + 1)]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("search-report", artifact_location=str(root / "artifacts"))
    return SimpleNamespace(client=client, experiment=experiment)


def _journal_study(path, name="taxi_fare-report"):
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name=name, storage=storage, direction="minimize")


def _tuner():
    """The library's XGBoost tuner as a search has it after ``prepare()`` (metric names, budget, test metric)."""
    tuner = XGBoostTuner(None, SimpleNamespace(task="regression"), None)
    tuner.test_metric, tuner.test_direction = "test_rmse", "minimize"
    return tuner


def _result(study, **extra) -> TuneResult:
    return TuneResult(study_name=study.study_name, storage="postgresql://optuna:***@db:5432/optuna",
                      parent_run_id="0123456789abcdef", status="finished", finished=len(study.trials),
                      budget=len(study.trials), seconds=1.0, **extra)


def _logged_run(tracking, tuner, final: float) -> str:
    run_id = tracking.client.create_run(tracking.experiment).info.run_id
    train, validation = tuner.curve_metrics
    metrics = [Metric(validation, v, 0, step) for step, v in enumerate(_curve(final), start=1)]
    metrics += [Metric(train, 0.8 * v, 0, step) for step, v in enumerate(_curve(final), start=1)]
    tracking.client.log_batch(run_id, metrics=metrics)
    return run_id


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tracking):
    """15 trials over the 12 parameters, rungs of 10 rounds reported to the pruner, trials 3 and 9 pruned; the
    best trial's learning curve in a real MLflow run."""
    tmp = tmp_path_factory.mktemp("search")
    study, tuner = _journal_study(tmp / "study.journal"), _tuner()
    rng = np.random.default_rng(7)
    trials = [{name: _sample(rng, d) for name, d in SPACE.items()} for _ in range(15)]
    finals = [_rmse(p) for p in trials]
    best = min((n for n in range(15) if n not in PRUNED_TRIALS), key=finals.__getitem__)
    run_id = _logged_run(tracking, tuner, finals[best])
    for number, (params, final) in enumerate(zip(trials, finals)):
        rungs = {r: _curve(final)[r - 1] for r in range(10, ROUNDS + 1, 10)}
        if number in PRUNED_TRIALS:
            rungs = {r: v + 5 for r, v in rungs.items() if r <= 20}
        attrs = {"best_rounds": ROUNDS, "seconds": 1.5, **({"mlflow_run_id": run_id} if number == best else {})}
        pruned = number in PRUNED_TRIALS
        study.add_trial(create_trial(params=params, distributions=SPACE, intermediate_values=rungs, user_attrs=attrs,
                                     state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                                     value=None if pruned else final))
    report = write_report(study, tmp / "report" / "report.html", tuner=tuner, tracking=tracking.client,
                          result=_result(study, best_number=best, best_value=finals[best], test_value=3.2,
                                         champion_value=3.4, promoted=True, model_version="2"))
    return SimpleNamespace(study=study, tuner=tuner, report=report, page=report.read_text(), best=best,
                           run_id=run_id, tracking=tracking.client)


def _body(page: str) -> str:
    """The page after its head (plotly.js itself says "not available" here and there)."""
    return page.split("</head>", 1)[1]


def test_report_embeds_plotly_once_and_has_every_section(searched):
    assert searched.page.count(plotly_js()[:300]) == 1 and searched.page.count("<script") - 1 == \
        _body(searched.page).count("<script")  # the library in the head, only figures' data in the body
    page = _body(searched.page)
    for title in ("Promotion", "Top trials", "Optimisation history", "Parameter importances (fANOVA)",
                  "Parallel coordinates", "Slices", "Intermediate values (pruning)",
                  f"Learning curve of the best trial (#{searched.best})"):
        assert f"<h2>{title}</h2>" in page, title
    assert "not available" not in page
    # the facts: status, objective, trials by state, parent run, storage without its password
    assert "finished" in page and "validation_rmse (minimize)" in page and "13 complete, 2 pruned" in page
    assert "0123456789abcdef" in page and "optuna:***@db" in page
    assert "promoted (model version 2)" in page
    # 1 history + 1 importance + 1 parallel coordinates + 5 slices + 1 intermediate + 1 learning curve
    assert page.count("Plotly.newPlot(") == 5 + TOP_PARAMS
    figures = [json.loads(data) for data in re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page)]
    assert figures and not any(t.get("type") in ("scattergl", "parcoords") for data in figures for t in data)


def test_parallel_coordinates_and_slices_show_only_the_most_important(searched, tracking):
    study, tuner = searched.study, searched.tuner
    ranking = rank_params(study, tuner.direction)
    assert len(ranking.params) == TOP_PARAMS and len(ranking.importances) == len(SPACE)
    assert ranking.params == list(ranking.importances)[:TOP_PARAMS]  # fANOVA order, most important first
    assert ranking.params[0] == "learning_rate"  # the one that matters (13 trials are few for fANOVA)
    parts = {p.title.split(" (#")[0]: p for p in search_figures(study, tuner=tuner, tracking=tracking.client)}
    parallel = parts["Parallel coordinates"].figures[0]
    assert list(parallel.layout.xaxis.ticktext) == [tuner.metric, *sorted(ranking.params)]
    slices = parts["Slices"]
    assert slices.grid and [f.layout.xaxis.title.text for f in slices.figures] == ranking.params
    assert all(f.layout.height <= 400 for f in slices.figures)  # one readable panel each, not a strip
    importances = parts["Parameter importances (fANOVA)"].figures[0]
    assert set(importances.data[0].y) == set(SPACE) and importances.layout.height >= 30 * len(SPACE)
    intermediate = parts["Intermediate values (pruning)"].figures[0]
    assert {t.legendgroup for t in intermediate.data} == {"complete", "pruned"} and len(intermediate.data) == 15
    curve = parts["Learning curve of the best trial"].figures[0]
    assert {t.name for t in curve.data} >= set(tuner.curve_metrics) and len(curve.data[0].x) == ROUNDS
    assert curve.layout.yaxis.type == "log" and curve.layout.xaxis.title.text == "boosting round"


def test_history_png_is_written_next_to_the_report(searched):
    png = (searched.report.parent / HISTORY_PNG).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert 800 <= width <= 1400 and 350 <= height <= 700, (width, height)


def test_one_complete_trial_says_why_there_are_no_importances(tmp_path, tracking):
    study, tuner = _journal_study(tmp_path / "one.journal"), _tuner()
    params = {name: _sample(np.random.default_rng(1), d) for name, d in SPACE.items()}
    study.add_trial(create_trial(params=params, distributions=SPACE, value=_rmse(params)))
    study.add_trial(create_trial(params=params, distributions=SPACE, state=TrialState.FAIL))
    page = _body(write_report(study, tmp_path / "report.html", tuner=tuner, tracking=tracking.client,
                              result=_result(study)).read_text())
    assert "<h2>Parameter importances (fANOVA)</h2>" in page
    assert "not available: fANOVA importances need at least 2 complete trials (this study has 1)" in page
    assert "not available: the best trial records no MLflow run" in page
    assert "not available: no trial reported an intermediate value" in page
    assert "Parameters not ranked" in page  # the parallel coordinates still drawn, and the page says why
    assert (tmp_path / HISTORY_PNG).is_file()


def test_empty_study_is_a_page_of_notes(tmp_path, tracking):
    study = _journal_study(tmp_path / "empty.journal")
    page = _body(write_report(study, tmp_path / "report.html", tuner=_tuner(), tracking=tracking.client,
                              result=_result(study)).read_text())
    assert page.count("not available: no complete trials yet") == 5 and "Plotly.newPlot(" not in page
    assert not (tmp_path / HISTORY_PNG).exists()


def test_conditional_space_ranks_the_best_trials_parameters_among_trials_of_its_kind(tmp_path):
    """``family`` is all every trial sets; the XGBoost parameters are ranked among the XGBoost trials."""
    xgboost = {"family": CategoricalDistribution(["xgboost", "keras_mlp"]), **{k: SPACE[k] for k in
               ("learning_rate", "max_depth", "subsample", "reg_lambda", "gamma", "colsample_bytree")}}
    keras = {"family": xgboost["family"], "units": CategoricalDistribution([64, 128, 256]),
             "mlp_learning_rate": FloatDistribution(0.0003, 0.01, log=True)}
    study, rng = _journal_study(tmp_path / "conditional.journal"), np.random.default_rng(3)
    for number in range(14):
        space = xgboost if number % 3 else keras
        params = {name: _sample(rng, d) for name, d in space.items() if name != "family"}
        params["family"] = "xgboost" if space is xgboost else "keras_mlp"
        value = (_rmse({"subsample": 1.0, "tree_method": "hist", **params}) if space is xgboost
                 else 9 + params["units"] / 64)
        study.add_trial(create_trial(params=params, distributions=space, value=value))
    ranking = rank_params(study, "minimize")
    assert list(ranking.importances) == ["family"] and ranking.within_best_trials == 9
    assert ranking.params[0] == "family" and set(ranking.params[1:]) <= set(xgboost)
    assert len(ranking.params) == TOP_PARAMS and ranking.params[1] == "learning_rate"


def test_too_few_trials_of_the_best_kind_lists_its_parameters_unranked(tmp_path):
    """Two XGBoost trials cannot rank the XGBoost parameters: the best trial's are shown first, unranked."""
    xgboost = {"family": CategoricalDistribution(["xgboost", "keras_mlp"]), **{k: SPACE[k] for k in
               ("learning_rate", "max_depth", "subsample")}}
    keras = {"family": xgboost["family"], "units": CategoricalDistribution([64, 128, 256]),
             "layers": IntDistribution(1, 3), "mlp_learning_rate": FloatDistribution(0.0003, 0.01, log=True)}
    study, rng = _journal_study(tmp_path / "few.journal"), np.random.default_rng(5)
    for number, space in enumerate([keras, keras, keras, xgboost, xgboost]):
        params = {name: _sample(rng, d) for name, d in space.items() if name != "family"}
        params["family"] = "xgboost" if space is xgboost else "keras_mlp"
        value = 1.0 + number % 3 + 10 * (space is keras)
        study.add_trial(create_trial(params=params, distributions=space, value=value))
    ranking = rank_params(study, "minimize")
    assert list(ranking.importances) == ["family"] and not ranking.within_best
    assert ranking.params == ["family", "learning_rate", "max_depth", "subsample", "layers"]
    assert "only 2 complete trial(s) set all of the best trial's parameters" in ranking.note
