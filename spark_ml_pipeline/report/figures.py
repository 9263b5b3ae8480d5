"""The report's figures: numpy/pandas in, plotly figures out (SVG traces, so a browser draws every point).

Each function draws one picture a person judges a model by; none touches Spark or the store."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import auc, precision_recall_curve, roc_curve

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, label: str) -> go.Figure:
    """Every sampled row as a point, with the y = x line a perfect model lies on."""
    low = float(min(np.min(actual), np.min(predicted)))
    high = float(max(np.max(actual), np.max(predicted)))
    figure = go.Figure([
        go.Scatter(x=actual, y=predicted, mode="markers", name="rows",
                   marker={"size": 4, "opacity": 0.45, "color": PALETTE[0]}),
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = actual",
                   line={"color": "#444", "dash": "dash"}),
    ])
    figure.update_layout(xaxis_title=f"actual {label}", yaxis_title=f"predicted {label}", height=520)
    return figure


def residuals_by_decile(actual: np.ndarray, predicted: np.ndarray) -> go.Figure:
    """Residual (actual - predicted) per decile of the prediction: box plots show bias and spread by range."""
    residual = np.asarray(actual) - np.asarray(predicted)
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, 11)))
    bins = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, max(len(edges) - 2, 0))
    figure = go.Figure()
    for b in range(max(len(edges) - 1, 1)):
        inside = residual[bins == b]
        if inside.size:
            name = f"{edges[b]:.3g}–{edges[min(b + 1, len(edges) - 1)]:.3g}"
            figure.add_trace(go.Box(y=inside, name=name, boxpoints=False, marker_color=PALETTE[0], showlegend=False))
    figure.add_hline(y=0, line_dash="dash", line_color="#444")
    figure.update_layout(xaxis_title="decile of the prediction (range of predicted values)",
                         yaxis_title="residual (actual − predicted)", height=460)
    return figure


def importance_bars(importance: Mapping[str, float], measure: str, top: int = 25) -> go.Figure:
    """Features by importance, largest on top (at most ``top``), as a share of the total."""
    ranked = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:top]
    total = sum(importance.values()) or 1.0
    names = [name for name, _ in reversed(ranked)]
    shares = [value / total for _, value in reversed(ranked)]
    figure = go.Figure(go.Bar(x=shares, y=names, orientation="h", marker_color=PALETTE[0],
                              text=[f"{s:.1%}" for s in shares], textposition="outside"))
    figure.update_layout(xaxis_title=f"share of total {measure}", xaxis_tickformat=".0%",
                         height=max(300, 28 * len(names) + 120), margin={"l": 180})
    return figure


def confusion_matrix_heatmap(counts: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Rows: true class; columns: predicted class; colour: share of the true class; text: counts."""
    counts = np.asarray(counts, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = list(class_names)
    figure = go.Figure(go.Heatmap(z=shares, x=names, y=names, colorscale="Blues", zmin=0, zmax=1,
                                  text=counts.astype(int), texttemplate="%{text}",
                                  hovertemplate="true %{y}<br>predicted %{x}<br>%{text} rows (%{z:.1%})<extra></extra>",
                                  colorbar={"title": "share of<br>true class", "tickformat": ".0%"}))
    size = max(420, 48 * len(names) + 200)
    figure.update_layout(xaxis_title="predicted class", yaxis_title="true class", height=size,
                         yaxis_autorange="reversed", xaxis_tickangle=-35)
    return figure


def per_class_precision_recall(precision: Sequence[float], recall: Sequence[float],
                               class_names: Sequence[str]) -> go.Figure:
    names = list(class_names)
    figure = go.Figure([go.Bar(x=names, y=list(precision), name="precision", marker_color=PALETTE[0]),
                        go.Bar(x=names, y=list(recall), name="recall", marker_color=PALETTE[1])])
    figure.update_layout(barmode="group", yaxis_range=[0, 1.02], yaxis_title="share", xaxis_tickangle=-35,
                         height=420)
    return figure


def _one_vs_rest(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]):
    """(name, truth 0/1, score) per class; a binary problem is its positive class alone."""
    if probabilities.shape[1] == 2:
        yield class_names[1], (labels == 1).astype(int), probabilities[:, 1]
        return
    for k, name in enumerate(class_names):
        yield name, (labels == k).astype(int), probabilities[:, k]


def roc_curves(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> go.Figure | None:
    """None when no class has both positive and negative rows (nothing to draw)."""
    figure = go.Figure()
    for i, (name, truth, score) in enumerate(_one_vs_rest(labels, probabilities, class_names)):
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, score)
            figure.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc(fpr, tpr):.3f})",
                                        line={"color": PALETTE[i % len(PALETTE)]}))
    if not figure.data:
        return None
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                line={"color": "#999", "dash": "dot"}))
    figure.update_layout(xaxis_title="false positive rate", yaxis_title="true positive rate", height=480)
    return figure


def precision_recall_curves(labels: np.ndarray, probabilities: np.ndarray,
                            class_names: Sequence[str]) -> go.Figure | None:
    """None when no class has both positive and negative rows (nothing to draw)."""
    figure = go.Figure()
    for i, (name, truth, score) in enumerate(_one_vs_rest(labels, probabilities, class_names)):
        if 0 < truth.sum() < len(truth):
            precision, recall, _ = precision_recall_curve(truth, score)
            figure.add_trace(go.Scatter(x=recall, y=precision, mode="lines", name=name,
                                        line={"color": PALETTE[i % len(PALETTE)]}))
    if not figure.data:
        return None
    figure.update_layout(xaxis_title="recall", yaxis_title="precision", yaxis_range=[0, 1.02], height=480)
    return figure


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> go.Figure:
    """Reliability of the top-class probability: the share correct per bin of confidence (diagonal = calibrated),
    with how many rows fall in each bin."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(int)
    figure = make_subplots(rows=2, cols=1, row_heights=[0.7, 0.3], shared_xaxes=True, vertical_spacing=0.06)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    filled = [b for b in range(bins) if np.any(which == b)]
    expected = [float(confidence[which == b].mean()) for b in filled]
    observed = [float(correct[which == b].mean()) for b in filled]
    if filled:
        figure.add_trace(go.Scatter(x=expected, y=observed, mode="lines+markers", name="model",
                                    line={"color": PALETTE[0]}), row=1, col=1)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                                line={"color": "#999", "dash": "dot"}), row=1, col=1)
    figure.add_trace(go.Histogram(x=confidence, xbins={"start": 0, "end": 1, "size": 1 / bins}, name="rows",
                                  marker_color=PALETTE[1], showlegend=False), row=2, col=1)
    figure.update_yaxes(title_text="share correct", range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(title_text="rows", row=2, col=1)
    figure.update_xaxes(title_text="confidence (probability of the predicted class)", range=[0, 1], row=2, col=1)
    figure.update_layout(height=560)
    return figure


def learning_curves(history: Mapping[str, Sequence[float]], x_title: str = "epoch") -> go.Figure:
    """One panel per measure (loss, accuracy, ...): training and validation (``val_``) curves together."""
    measures = sorted({name[4:] if name.startswith("val_") else name for name in history if history[name]})
    measures = [m for m in measures if m not in ("lr", "learning_rate")] or measures
    columns = min(2, max(len(measures), 1))
    rows = math.ceil(len(measures) / columns) if measures else 1
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=measures, horizontal_spacing=0.1)
    for i, measure in enumerate(measures):
        row, col = i // columns + 1, i % columns + 1
        for j, (name, label) in enumerate(((measure, "train"), (f"val_{measure}", "validation"))):
            values = list(history.get(name) or [])
            if values:
                figure.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines+markers",
                                            name=label, legendgroup=label, showlegend=i == 0,
                                            line={"color": PALETTE[j]}, marker={"size": 5}), row=row, col=col)
        steps = max(len(history.get(measure) or []), len(history.get(f"val_{measure}") or []))
        figure.update_xaxes(title_text=x_title, tick0=1, dtick=max(1, math.ceil(steps / 10)), row=row, col=col)
        values = [v for name in (measure, f"val_{measure}") for v in (history.get(name) or [])]
        if values and min(values) > 0 and max(values) / min(values) > 20:  # e.g. a loss falling by decades
            figure.update_yaxes(type="log", row=row, col=col)
    figure.update_layout(height=360 * rows)
    return figure


def image_grid(panels: Sequence[tuple[str, np.ndarray]], columns: int, colorscale: str = "gray",
               shared_range: tuple[float, float] | None = None, reverse_scale: bool = False,
               panel_height: int = 170) -> go.Figure:
    """2-D arrays as heatmaps in a grid, each with its caption (images, fields, errors)."""
    rows = math.ceil(len(panels) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[caption for caption, _ in panels],
                           horizontal_spacing=0.02, vertical_spacing=0.25 / max(rows, 1))
    for i, (_, array) in enumerate(panels):
        low, high = shared_range or (float(np.min(array)), float(np.max(array)))
        row, col = i // columns + 1, i % columns + 1
        figure.add_trace(go.Heatmap(z=np.asarray(array), colorscale=colorscale, zmin=low, zmax=high,
                                    reversescale=reverse_scale, showscale=False,
                                    hovertemplate="row %{y}, col %{x}: %{z:.3g}<extra></extra>"), row=row, col=col)
        # square pixels: each panel's y axis keeps the scale of its own x axis
        figure.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=row, col=col)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed")
    figure.update_annotations(font_size=11)
    figure.update_layout(height=panel_height * rows + 60, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def distributions(samples: Mapping[str, np.ndarray], x_title: str) -> go.Figure:
    """Overlaid histograms (as shares, same bins) of one quantity in several populations."""
    values = [np.asarray(v, dtype=float) for v in samples.values() if len(v)]
    low = float(min(np.min(v) for v in values)) if values else 0.0
    high = float(max(np.max(v) for v in values)) if values else 1.0
    size = (high - low) / 40 or 1.0
    figure = go.Figure()
    for i, (name, sample) in enumerate(samples.items()):
        figure.add_trace(go.Histogram(x=np.asarray(sample, dtype=float), name=f"{name} ({len(sample):,} rows)",
                                      histnorm="probability", opacity=0.55, marker_color=PALETTE[i],
                                      xbins={"start": low, "end": high + size, "size": size}))
    figure.update_layout(barmode="overlay", xaxis_title=x_title, yaxis_title="share of rows", height=440)
    return figure


def class_shares(shares: Mapping[str, Sequence[float]], class_names: Sequence[str]) -> go.Figure:
    """The share of rows predicted as each class, one bar group per population."""
    figure = go.Figure([go.Bar(x=list(class_names), y=list(values), name=name, marker_color=PALETTE[i])
                        for i, (name, values) in enumerate(shares.items())])
    figure.update_layout(barmode="group", yaxis_title="share of rows", yaxis_tickformat=".0%", xaxis_tickangle=-35,
                         height=420)
    return figure
