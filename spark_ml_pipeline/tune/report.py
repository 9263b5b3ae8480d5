"""The report of a search: one self-contained HTML page of interactive plotly figures (plotly.js embedded once,
see :mod:`spark_ml_pipeline.report.document`), and a static PNG of the optimisation history next to it; both
are attached to the search's MLflow parent run (MLflow previews the PNG).

The page: the facts (status, objective, trials by state, parent run, storage without its password), the
promotion, the top trials, then the optimisation history, the parameter importances (fANOVA, seed 0), a
parallel-coordinates plot and one slice plot per parameter of the most important few (:func:`rank_params`),
the intermediate values reported to the pruner, and the best trial's learning curve (its MLflow run's metric
history). A figure that cannot be drawn (too few trials, nothing reported) is a note saying why.
"""
from __future__ import annotations

import html
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import TrialState

from spark_ml_pipeline.report.document import Block, Report, figure_block, preformatted_block, text_block
from spark_ml_pipeline.store.registry import verdict
from spark_ml_pipeline.tune.trials import format_table, top_trials

TOP_PARAMS = 5  # the parameters drawn in the parallel coordinates and the slices
HISTORY_PNG = "optimization_history.png"  # written next to report.html
IMPORTANCE_SEED = 0
MIN_TRIALS_WITHIN_BEST = 5  # fewer trials of the best's kind: its parameters are listed, not ranked
# The x axis of a learning curve, by the budget attribute a trial recorded.
STEP_LABELS = {"best_rounds": "boosting round", "best_epochs": "epoch"}
COMPLETE, PRUNED, OTHER = "#1f77b4", "#d62728", "#9a9a9a"


@dataclass
class Part:
    """One section of the page: figures, or the reason there are none."""

    title: str
    figures: list = field(default_factory=list)  # plotly figures
    note: str = ""
    reason: str | None = None  # set: not drawn, and why
    grid: bool = False  # figures side by side (the slices)


@dataclass
class Ranking:
    """Which parameters the parallel coordinates and the slices show, most important first, and why."""

    params: list[str]
    importances: dict[str, float] = field(default_factory=dict)  # over all complete trials (common parameters)
    within_best: dict[str, float] = field(default_factory=dict)  # over the trials setting the best's parameters
    within_best_trials: int = 0  # complete trials that set all of the best trial's parameters
    reason: str | None = None  # why there are no importances at all
    note: str = ""


# --- which parameters matter ----------------------------------------------------------------------------

def _fanova(study, params: list[str] | None = None) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=IMPORTANCE_SEED),
                                     params=params)


def rank_params(study, direction: str, top: int = TOP_PARAMS) -> Ranking:
    """The ``top`` parameters by fANOVA importance (seed 0).

    fANOVA compares the parameters every complete trial sets; in a conditional space (e.g. ``family``, with
    XGBoost parameters only when ``family: xgboost``) that may be only the switch, so the parameters of the
    best trial are then ranked again among the complete trials that set all of them (at least
    :data:`MIN_TRIALS_WITHIN_BEST`). Parameters left unranked follow: the best trial's first, then those the
    most complete trials set; ``reason`` says why there are no importances at all, ``note`` how they were
    chosen.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    counts: dict[str, int] = {}
    for trial in complete:
        for name in trial.params:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return Ranking([], reason="no complete trial set any parameter" if complete else "no complete trials yet")
    ranking = Ranking([])
    if len(complete) < 2:
        ranking.reason = f"fANOVA importances need at least 2 complete trials (this study has {len(complete)})"
    else:
        try:
            ranking.importances = _fanova(study)
        except Exception as exc:  # e.g. no parameter common to every complete trial
            ranking.reason = f"fANOVA importances could not be computed: {exc}"
        if ranking.importances and not any(ranking.importances.values()):
            ranking.reason = "fANOVA gives every parameter importance 0 (the objective did not vary)"
            ranking.importances = {}
    best = top_trials(study, direction, 1)
    missing = [p for p in (best[0].params if best else {}) if p not in ranking.importances]
    if missing and ranking.reason is None:
        params = sorted(best[0].params)
        ranking.within_best_trials = sum(1 for t in complete if set(params) <= set(t.params))
        if ranking.within_best_trials >= MIN_TRIALS_WITHIN_BEST:
            try:
                ranking.within_best = _fanova(study, params)
            except Exception:
                ranking.within_best = {}
            if not any(ranking.within_best.values()):
                ranking.within_best = {}
    ranked = list(ranking.importances)
    ranked += [p for p in ranking.within_best if p not in ranked]
    of_best = set(best[0].params) if best else set()
    unranked = sorted((p for p in counts if p not in ranked), key=lambda p: (p not in of_best, -counts[p], p))
    ranking.params = (ranked + unranked)[:top]
    shown_unranked = [p for p in ranking.params if p not in ranked]
    if ranking.reason:
        ranking.note = (f"Parameters not ranked: {ranking.reason}; shown are the best trial's parameters, then "
                        "those the most complete trials set.")
    else:
        ranking.note = f"The most important parameters by fANOVA (seed {IMPORTANCE_SEED})"
        if ranking.within_best:
            ranking.note += (" over all complete trials, then among the "
                             f"{ranking.within_best_trials} that set all of the best trial's parameters")
        ranking.note += "."
        if shown_unranked:
            few = (f" (only {ranking.within_best_trials} complete trial(s) set all of the best trial's parameters,"
                   f" fewer than {MIN_TRIALS_WITHIN_BEST})" if missing and not ranking.within_best else "")
            ranking.note += f" Not ranked{few}: {', '.join(shown_unranked)}."
    return ranking


# --- figures --------------------------------------------------------------------------------------------

def _log_if_wide(values) -> str:
    """A log axis when positive values span more than a decade."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    return "log" if values and min(values) > 0 and max(values) / min(values) > 10 else "linear"


def _log_axis(values) -> dict:
    """A log axis; over more than a decade labelled 1, 2, 5 per decade in full (plotly's own labels then are
    every digit, in a small font, without the decade: "2" for 20)."""
    values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not values or max(values) / min(values) <= 10:
        return {"type": "log"}
    low, high = min(values), max(values)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if low / 1.5 <= t <= high * 1.5]
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{t:.3g}" for t in ticks]}


def _tidy(figure, *, title: str | None = None, x: str | None = None, y: str | None = None, height: int = 420):
    figure.update_layout(title={"text": title or "", "x": 0.02, "xanchor": "left"}, height=height,
                         hoverlabel={"namelength": -1})
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    if x is not None:
        figure.update_xaxes(title_text=x)
    if y is not None:
        figure.update_yaxes(title_text=y)
    return figure


def _history(study, tuner) -> Part:
    title = "Optimisation history"
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return Part(title, reason="no complete trials yet")
    figure = optuna.visualization.plot_optimization_history(study, target_name=tuner.metric)
    values = [t.value for t in complete]
    figure.update_yaxes(**(_log_axis(values) if _log_if_wide(values) == "log" else {}))
    figure.update_traces(marker={"size": 8})
    figure.for_each_trace(lambda trace: trace.update(name="best so far"), selector={"name": "Best Value"})
    figure.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    note = (f"{tuner.metric} of each complete trial ({tuner.direction}) and the best so far."
            + (f" The {pruned} pruned trial(s) have no value: see the intermediate values." if pruned else ""))
    return Part(title, [_tidy(figure, x="trial", y=tuner.metric, height=400)], note=note)


def _importance_bars(importances: dict[str, float], title: str):
    names = list(importances)[::-1]  # the most important at the top
    values = [importances[n] for n in names]
    figure = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color=COMPLETE,
                              text=[f"{v:.3f}" for v in values], textposition="outside", cliponaxis=False,
                              hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_xaxes(range=[0, max(values) * 1.18 if max(values) > 0 else 1])
    return _tidy(figure, title=title, x="importance (fANOVA, normalised)", height=110 + 30 * len(names))


def _importances(ranking: Ranking) -> Part:
    title = "Parameter importances (fANOVA)"
    if ranking.reason or not ranking.importances:
        return Part(title, reason=ranking.reason or "no parameter is set by every complete trial")
    figures = [_importance_bars(ranking.importances, "over all complete trials")]
    note = "Only the parameters every complete trial sets can be compared over all trials"
    if len(ranking.importances) == 1:
        note += f" (here only {next(iter(ranking.importances))}, whose importance is 1 by construction)"
    note += "."
    if ranking.within_best:
        figures.append(_importance_bars(ranking.within_best, f"among the {ranking.within_best_trials} complete "
                                                             "trials that set all of the best trial's parameters"))
        note += (" The second ranks the best trial's parameters among the trials of its kind (a conditional "
                 "space sets some parameters only for some choices).")
    return Part(title, figures, note=note)


def _parallel(study, tuner, ranking: Ranking) -> Part:
    title = "Parallel coordinates"
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return Part(title, reason="no complete trials yet")
    if not ranking.params:
        return Part(title, reason=ranking.reason or "no parameters")
    figure = optuna.visualization.plot_parallel_coordinate(study, params=ranking.params, target_name=tuner.metric)
    figure.update_annotations(font={"size": 11})
    figure.update_xaxes(tickfont={"size": 13})
    note = (f"{ranking.note} One line per complete trial, coloured by {tuner.metric}; axes in alphabetical "
            "order after the objective; \"None\": the trial did not set the parameter.")
    return Part(title, [_tidy(figure, height=460)], note=note)


def _slices(study, tuner, ranking: Ranking) -> Part:
    title = "Slices"
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return Part(title, reason="no complete trials yet")
    if not ranking.params:
        return Part(title, reason=ranking.reason or "no parameters")
    importance = {**ranking.within_best, **ranking.importances}
    figures = []
    for name in ranking.params:
        figure = optuna.visualization.plot_slice(study, params=[name], target_name=tuner.metric)
        figure.update_traces(marker={"size": 9, "colorbar": {"thickness": 12, "title": {"text": "trial"}}})
        heading = name + (f" · importance {importance[name]:.3f}" if name in importance else "")
        if figure.layout.xaxis.type == "log":
            figure.update_xaxes(**_log_axis([t.params.get(name) for t in study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,)) if isinstance(t.params.get(name), (int, float))]))
        figures.append(_tidy(figure, title=heading, x=name, y=tuner.metric, height=360))
    note = (f"{tuner.metric} of each complete trial against one parameter (colour: trial number), for the "
            "parameters of the parallel coordinates" + (", most important first." if importance else "."))
    return Part(title, figures, note=note, grid=True)


def _budget_label(tuner, trial=None) -> str:
    attrs = trial.user_attrs if trial is not None else {}
    attr = next((k for k in (tuner.budget_attr, "best_epochs", "best_rounds") if k in attrs), tuner.budget_attr)
    return STEP_LABELS.get(attr, str(tuner.budget_name).removesuffix("s"))


def _intermediate(study, tuner) -> Part:
    title = "Intermediate values (pruning)"
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                   TrialState.RUNNING)) if t.intermediate_values]
    if not trials:
        return Part(title, reason="no trial reported an intermediate value (no pruner, or no rungs)")
    states = {t.number: t.state for t in trials}
    figure = optuna.visualization.plot_intermediate_values(study)
    shown: set[str] = set()
    for trace in figure.data:
        number = int(str(trace.name).removeprefix("Trial"))
        group = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(states.get(number), "running")
        color = {"complete": COMPLETE, "pruned": PRUNED}.get(group, OTHER)
        # One legend entry per group (it toggles the group); hovering names the trial.
        trace.update(name=group, legendgroup=group, showlegend=group not in shown,
                     line={"color": color, "dash": "dot" if group == "pruned" else "solid", "width": 1.5},
                     marker={"color": color, "size": 6},
                     hovertemplate=f"trial {number} ({group})<br>step %{{x}}: %{{y:.4g}}<extra></extra>")
        shown.add(group)
    figure.update_layout(showlegend=True, legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1,
                                                  "xanchor": "right"})
    values = [v for t in trials for v in t.intermediate_values.values()]
    figure.update_yaxes(**(_log_axis(values) if _log_if_wide(values) == "log" else {}))
    pruned = sum(1 for s in states.values() if s == TrialState.PRUNED)
    note = (f"The value each trial reported to the pruner after each step ({tuner.budget_name}); "
            f"{pruned} trial(s) pruned (red, dotted), stopped before their full budget.")
    return Part(title, [_tidy(figure, x=f"step ({tuner.budget_name})", y=tuner.metric, height=420)], note=note)


def _curves(tracking, run_id: str, names) -> dict[str, list]:
    curves = {}
    for name in names:
        history = tracking.get_metric_history(run_id, name)
        if history:
            curves[name] = sorted((m.step, m.value) for m in history)
    return curves


def _learning_curve(study, tuner, tracking) -> Part:
    best = top_trials(study, tuner.direction, 1)
    if not best:
        return Part("Learning curve of the best trial", reason="no complete trials yet")
    best = best[0]
    title = f"Learning curve of the best trial (#{best.number})"
    run_id = best.user_attrs.get("mlflow_run_id")
    if not run_id:
        return Part(title, reason="the best trial records no MLflow run (user attribute mlflow_run_id)")
    try:
        curves = _curves(tracking, run_id, tuner.curve_metrics)
        label = _budget_label(tuner, best)
        if not curves:  # e.g. a trial of another model family, with curves of its own names
            run = tracking.get_run(run_id)
            others = [n for n in sorted(run.data.metrics) if n not in (tuner.metric, "duration_seconds")]
            curves = {n: c for n, c in _curves(tracking, run_id, others).items() if len(c) > 1}
    except Exception as exc:
        return Part(title, reason=f"the MLflow run {run_id} could not be read: {type(exc).__name__}: {exc}")
    if not curves:
        return Part(title, reason=f"the best trial's MLflow run {run_id} has no metric history "
                                  f"({', '.join(tuner.curve_metrics)})")
    figure = go.Figure()
    values = []
    for name, points in curves.items():
        figure.add_trace(go.Scatter(x=[s for s, _ in points], y=[v for _, v in points], mode="lines", name=name,
                                    hovertemplate=f"{name}<br>{label} %{{x}}: %{{y:.4g}}<extra></extra>"))
        values += [v for _, v in points]
    if best.intermediate_values:
        steps = sorted(best.intermediate_values)
        figure.add_trace(go.Scatter(x=steps, y=[best.intermediate_values[s] for s in steps], mode="markers",
                                    marker={"size": 9, "symbol": "circle-open", "line": {"width": 2}},
                                    name=f"{tuner.metric} reported to the pruner"))
        values += list(best.intermediate_values.values())
    positive = all(v > 0 for v in values if math.isfinite(v))
    figure.update_yaxes(**(_log_axis(values) if positive else {"type": "linear"}))
    figure.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    metric = tuner.metric.removeprefix("validation_").removeprefix("val_")
    note = (f"From the trial's MLflow run {run_id}" + ("; log scale." if positive else "."))
    return Part(title, [_tidy(figure, x=label, y=metric, height=420)], note=note)


def search_figures(study, *, tuner, tracking, top: int = TOP_PARAMS) -> list[Part]:
    """The figure sections of the report, in page order; one that fails becomes its reason, never an error."""
    ranking = rank_params(study, tuner.direction, top)
    makers = [("Optimisation history", lambda: _history(study, tuner)),
              ("Parameter importances (fANOVA)", lambda: _importances(ranking)),
              ("Parallel coordinates", lambda: _parallel(study, tuner, ranking)),
              ("Slices", lambda: _slices(study, tuner, ranking)),
              ("Intermediate values (pruning)", lambda: _intermediate(study, tuner)),
              ("Learning curve of the best trial", lambda: _learning_curve(study, tuner, tracking))]
    parts = []
    for title, make in makers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parts.append(make())
        except Exception as exc:
            parts.append(Part(title, reason=f"{type(exc).__name__}: {str(exc)[:300]}"))
    return parts


# --- the static history -------------------------------------------------------------------------------

def write_history_png(study, path: Path, *, tuner) -> Path | None:
    """The optimisation history as a PNG (900 x 450), written atomically; None (and no stale file) without
    complete trials."""
    path = Path(path)
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    if not complete:
        path.unlink(missing_ok=True)
        return None
    numbers, values = [t.number for t in complete], [t.value for t in complete]
    pick = min if tuner.direction == "minimize" else max
    best = [pick(values[:i + 1]) for i in range(len(values))]
    figure = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    axis = figure.add_subplot()
    axis.plot(numbers, values, "o", color=COMPLETE, markersize=6, label=f"{tuner.metric} of a complete trial")
    axis.step(numbers, best, where="post", color=PRUNED, linewidth=1.8, label="best so far")
    axis.set_yscale(_log_if_wide(values))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trial")
    axis.set_ylabel(tuner.metric)
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    axis.set_title(f"{study.study_name}: {len(complete)} complete, {pruned} pruned trials ({tuner.direction})",
                   fontsize=11)
    axis.grid(alpha=0.3)
    axis.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # renamed into place
    try:
        figure.savefig(temporary, format="png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


# --- the page -------------------------------------------------------------------------------------------

def write_report(study, path: Path, *, tuner, tracking, result) -> Path:
    """``path`` (report.html) and :data:`HISTORY_PNG` next to it; returns ``path``."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" is said in the page itself
    try:
        parts = search_figures(study, tuner=tuner, tracking=tracking)
        write_history_png(study, Path(path).with_name(HISTORY_PNG), tuner=tuner)
    finally:
        optuna.logging.set_verbosity(verbosity)
    states = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    facts = {"status": result.status, "objective": f"{tuner.metric} ({tuner.direction})",
             "trials": ", ".join(f"{n} {state}" for state, n in states.items() if n) or "none",
             "MLflow parent run": result.parent_run_id, "storage": result.storage}
    if result.best_number is not None:
        facts["best"] = f"#{result.best_number}: {result.best_value:.4f}"
    report = Report(f"Hyperparameter search {study.study_name}", facts)
    if result.promoted is not None:
        champion = "-" if result.champion_value is None else f"{result.champion_value:.4f}"
        report.section("Promotion", [text_block(
            f"Refit of the best on train + validation: {tuner.test_metric} {result.test_value:.4f}; current "
            f"champion on the same test split: {champion}; {verdict(result.promoted, result.model_version)}.")])
    report.section("Top trials", [preformatted_block(format_table(
        top_trials(study, tuner.direction, 10), tuner.metric, tuner.budget_attr, tuner.budget_name))])
    for part in parts:
        if part.reason is not None:
            report.unavailable(part.title, part.reason)
            continue
        blocks = [figure_block(f) for f in part.figures]
        if part.note and part.grid:  # across the whole row of the grid, above the figures
            blocks.insert(0, Block(f'<p class="note" style="grid-column:1/-1;margin:0">{html.escape(part.note)}</p>'))
        elif part.note:
            blocks.append(text_block(part.note, note=True))
        report.section(part.title, blocks, grid=part.grid)
    return report.write(path)
