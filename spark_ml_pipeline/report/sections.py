"""The report's sections by kind of model: each adds its figures (with a line on how to read them) to a
:class:`Report` from arrays already on the driver."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from spark_ml_pipeline.report import figures
from spark_ml_pipeline.report.document import Report, figure_block, png_block, table_block, text_block
from spark_ml_pipeline.report.profile import drift


def metrics_table(report: Report, metrics: Mapping[str, Any], title: str = "Metrics") -> None:
    rows = [{"metric": k, "value": v} for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None]
    if rows:
        report.section(title, [table_block(rows)])


def regression(report: Report, actual: np.ndarray, predicted: np.ndarray, label: str, rows_total: int | None = None,
               importance: Mapping[str, float] | None = None, importance_measure: str = "gain") -> None:
    of = f"{len(actual):,} test rows" + (f" sampled of {rows_total:,}" if rows_total and rows_total > len(actual)
                                         else "")
    report.figure("Predicted vs actual", figures.predicted_vs_actual(actual, predicted, label),
                  note=f"{of}; points on the dashed line are exact.")
    report.figure("Residuals by decile of the prediction", figures.residuals_by_decile(actual, predicted),
                  note="Boxes above zero: the model predicts too low in that range; wide boxes: less certain there.")
    feature_importance(report, importance, importance_measure)


def feature_importance(report: Report, importance: Mapping[str, float] | None, measure: str = "gain") -> None:
    if importance:
        report.figure(f"Feature importance by {measure}", figures.importance_bars(importance, measure),
                      note=f"Total {measure} of the splits on each feature, over all trees.")
    elif importance is not None:
        report.unavailable(f"Feature importance by {measure}", "the model made no split")


def confusion_counts(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def per_class_rates(counts: np.ndarray) -> tuple[list[float], list[float]]:
    """Precision and recall of every class from confusion counts (0 where a class was never predicted/seen)."""
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = [counts[c, c] / predicted[c] if predicted[c] else 0.0 for c in range(len(counts))]
    recall = [counts[c, c] / actual[c] if actual[c] else 0.0 for c in range(len(counts))]
    return precision, recall


def classification(report: Report, labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                   rows_total: int | None = None, importance: Mapping[str, float] | None = None) -> None:
    labels = np.asarray(labels, dtype=int)
    k = len(class_names)
    counts = confusion_counts(labels, probabilities.argmax(axis=1), k)
    precision, recall = per_class_rates(counts)
    of = f"{len(labels):,} test rows" + (f" sampled of {rows_total:,}" if rows_total and rows_total > len(labels)
                                         else "")
    report.figure("Confusion matrix", figures.confusion_matrix_heatmap(counts, class_names),
                  note=f"{of}; colour is the share of each true class, the number is rows.")
    report.section("Precision and recall per class", [
        figure_block(figures.per_class_precision_recall(precision, recall, class_names)),
        table_block([{"class": name, "rows": int(counts[c, :].sum()), "precision": precision[c],
                      "recall": recall[c]} for c, name in enumerate(class_names)])])
    for title, figure in (("ROC curves (one class against the rest)",
                           figures.roc_curves(labels, probabilities, class_names)),
                          ("Precision-recall curves", figures.precision_recall_curves(labels, probabilities,
                                                                                      class_names))):
        if figure is None:
            report.unavailable(title, "every sampled test row is of one class")
        else:
            report.figure(title, figure)
    report.figure("Calibration", figures.calibration(labels, probabilities),
                  note="A calibrated model is right as often as it is confident: points on the dotted line.")
    if importance is not None:
        feature_importance(report, importance)


def learning_curves(report: Report, history: Mapping[str, Sequence[float]], x_title: str = "epoch") -> None:
    if any(history.values()):
        report.figure("Learning curves", figures.learning_curves(history, x_title),
                      note=f"Recorded per {x_title} during the fit, on the training rows and on the validation rows "
                           "held out of training.")
    else:
        report.unavailable("Learning curves", "the fit recorded no per-epoch metrics")


def most_confident_mistakes(report: Report, images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                            class_names: Sequence[str], n: int = 12) -> None:
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if not wrong.size:
        report.unavailable("Most confident mistakes", "no test row in the sample was misclassified")
        return
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:n]
    panels = [(f"{class_names[predicted[i]]} {probabilities[i, predicted[i]]:.0%}<br>(is {class_names[labels[i]]})",
               images[i]) for i in worst]
    report.figure("Most confident mistakes", figures.image_grid(panels, columns=6, reverse_scale=True),
                  note="Test images the model got wrong with the highest confidence: predicted class and its "
                       "probability, then the true class.")


def fields(report: Report, truth: np.ndarray, predicted: np.ndarray, n: int = 4,
           inputs: np.ndarray | None = None) -> None:
    """Predicted, true and error fields of ``n`` test samples (rows of the grid), on shared colour ranges."""
    n = min(n, len(truth))
    panels = []
    for i in range(n):
        error = predicted[i] - truth[i]
        relative = np.linalg.norm(error) / max(np.linalg.norm(truth[i]), 1e-12)
        if inputs is not None:
            panels.append((f"#{i} input", inputs[i]))
        panels += [(f"#{i} true", truth[i]), (f"#{i} predicted", predicted[i]),
                   (f"#{i} error · relative L2 {relative:.1%}", error)]
    columns = 4 if inputs is not None else 3
    report.figure("Sample predictions: fields", figures.image_grid(panels, columns=columns, colorscale="Viridis",
                                                                   panel_height=230),
                  note="Each row is one test sample; the error panel is predicted − true on its own colour scale.")


def reconstructions(report: Report, images: np.ndarray, reconstructed: np.ndarray, n: int = 8) -> None:
    n = min(n, len(images))
    panels = [(f"#{i} input", images[i]) for i in range(n)]
    panels += [(f"#{i} rebuilt<br>MSE {np.mean((reconstructed[i] - images[i]) ** 2):.3f}", reconstructed[i])
               for i in range(n)]
    report.figure("Reconstructions", figures.image_grid(panels, columns=n, reverse_scale=True,
                                                        shared_range=(0.0, 1.0)),
                  note="Top row: test images; bottom row: what the autoencoder rebuilt from their codes.")


def prediction_drift(report: Report, current: Mapping[str, Any], reference: Mapping[str, Any] | None,
                     reference_name: str) -> dict[str, float]:
    """Scored predictions against the training run's (its test set); returns the drift measures."""
    if reference is None:
        report.unavailable("Predictions compared with the training run",
                           f"{reference_name} recorded no prediction profile")
        return {}
    gaps = drift(dict(current), dict(reference))
    if current.get("kind") == "classes":
        figure = figures.class_shares({"scored": current["shares"], reference_name: reference["shares"]},
                                      current["classes"])
    elif current.get("kind") == "numeric":
        figure = figures.distributions({"scored": np.asarray(current["sample"]),
                                        reference_name: np.asarray(reference["sample"])}, current["quantity"])
    else:
        report.unavailable("Predictions compared with the training run", "no rows were scored")
        return {}
    note = " · ".join(f"{name.replace('_', ' ')} {value:.4g}" for name, value in gaps.items())
    report.figure("Predictions compared with the training run", figure,
                  note=f"The scored rows' predictions against the training run's on its test set. {note}")
    return gaps


def generated_samples(report: Report, grids: Sequence[tuple[str, bytes]], note: str) -> None:
    """Pictures of a generative model's samples (PNG bytes), each under its caption."""
    blocks = []
    for caption, png in grids:
        blocks += [text_block(caption), png_block(png, caption)]
    report.section("Generated samples", [*blocks, text_block(note, note=True)])


def judged_classes(report: Report, rows: Sequence[Mapping[str, Any]], note: str) -> None:
    """A classifier's verdict on generated samples, one row per class asked for."""
    report.section("Generated samples, judged per class", [table_block(rows), text_block(note, note=True)])
