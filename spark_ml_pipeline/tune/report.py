"""The HTML report of a search: Optuna's matplotlib plots and the best trial's learning curve, as PNGs
embedded in one self-contained file (base64), also attached to the search's MLflow parent run."""
from __future__ import annotations

import base64
import html
import io
import warnings
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, never a window: before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.importance import FanovaImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization import matplotlib as ovm  # noqa: E402

from spark_ml_pipeline.tune.trials import format_table, top_trials


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_of(axes):
    first = np.ravel(np.asarray(axes, dtype=object))[0]
    return first.figure


def _section(title: str, make) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figure = make()
        return f"<h2>{html.escape(title)}</h2>\n<img src=\"data:image/png;base64,{_png(figure)}\"/>"
    except Exception as exc:  # e.g. importances need >= 2 complete trials with varying parameters
        return f"<h2>{html.escape(title)}</h2>\n<p class=note>not available: {html.escape(str(exc)[:300])}</p>"


def learning_curve_figure(curves: dict[str, list[float]], intermediate: dict[int, float], metric: str):
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, values in curves.items():
        if values:
            axis.plot(range(1, len(values) + 1), values, label=name)
    if intermediate:
        steps = sorted(intermediate)
        axis.plot(steps, [intermediate[s] for s in steps], "o", label=f"{metric} reported to the pruner")
    if not axis.lines:
        raise ValueError("the best trial recorded no learning curve")
    axis.set_xlabel("boosting round")
    axis.set_ylabel("RMSE")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    return figure


def write_report(study, path: Path, *, tuner, tracking, result) -> Path:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" is said in the page itself
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = top_trials(study, tuner.direction, 1)
    curves: dict[str, list[float]] = {}
    if best and best[0].user_attrs.get("mlflow_run_id"):
        for name in tuner.curve_metrics:
            try:
                history = tracking.get_metric_history(best[0].user_attrs["mlflow_run_id"], name)
                curves[name] = [m.value for m in sorted(history, key=lambda m: m.step)]
            except Exception:
                pass

    sections = [
        _section("Optimisation history", lambda: _figure_of(ovm.plot_optimization_history(study))),
        _section("Parameter importances (fANOVA)", lambda: _figure_of(ovm.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0)))),
        _section("Parallel coordinates", lambda: _figure_of(ovm.plot_parallel_coordinate(study))),
        _section("Slices", lambda: _figure_of(ovm.plot_slice(study))),
        _section("Intermediate values (pruning)", lambda: _figure_of(ovm.plot_intermediate_values(study))),
        _section(f"Learning curve of the best trial (#{best[0].number})" if best else "Learning curve",
                 lambda: learning_curve_figure(curves, best[0].intermediate_values if best else {}, tuner.metric)),
    ]
    states = {s.name: len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    promotion = ""
    if result.promoted is not None:
        champion = "-" if result.champion_value is None else f"{result.champion_value:.4f}"
        promotion = (f"<p>Refit of the best on train + validation: {tuner.test_metric} <b>{result.test_value:.4f}</b>;"
                     f" current champion on the same test split: <b>{champion}</b>; "
                     f"{'promoted' if result.promoted else 'not promoted'} (model version {result.model_version}).</p>")
    document = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}} img{{max-width:100%}}
pre{{background:#f4f4f4;padding:1em;overflow-x:auto}} .note{{color:#777}}</style></head><body>
<h1>Hyperparameter search {html.escape(study.study_name)}</h1>
<p>{html.escape(datetime.now(timezone.utc).isoformat(timespec='seconds'))} · status {html.escape(result.status)} ·
objective {html.escape(tuner.metric)} ({tuner.direction}) · trials {html.escape(str(states))} ·
MLflow parent run {html.escape(result.parent_run_id)} · storage {html.escape(result.storage)}</p>
{promotion}
<h2>Top trials</h2><pre>{html.escape(format_table(top_trials(study, tuner.direction, 10), tuner.metric,
                                      tuner.budget_attr, tuner.budget_name))}</pre>
{chr(10).join(sections)}
<p class=note>{len(complete)} complete trials.</p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    return path
