"""The run report's parts on real numbers: what each figure holds, the page around them, profiles and drift.
(The pages pipelines write are opened in a real browser by the pipeline and scoring tests.)"""
import json
import re
import stat

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from spark_ml_pipeline.report import figures, sections
from spark_ml_pipeline.report.document import Report, plotly_js
from spark_ml_pipeline.report.profile import drift, prediction_profile
from spark_ml_pipeline.report.samples import sample_rows, stacked, vector_slot_names

CLASSES = ("cat", "dog", "bird")


@pytest.fixture(scope="module")
def scored_classes():
    """Three classes, a model right about 80 % of the time with softmax-like scores."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 600)
    logits = rng.normal(0, 1, (600, 3))
    logits[np.arange(600), np.where(rng.random(600) < 0.8, labels, (labels + 1) % 3)] += 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


def figure_json(page: str) -> list[dict]:
    """The figures' data as plotly.js receives them (Plotly.newPlot(id, data, layout, config))."""
    return [json.loads(m) for m in re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page, re.S)]


def test_page_embeds_plotly_once_and_writes_atomically_readable(tmp_path):
    report = Report("a run", {"pipeline": "toy", "rmse": 1.234567})
    sections.learning_curves(report, {"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.4], "lr": [0.1] * 3})
    sections.learning_curves(report, {})
    path = report.write(tmp_path / "out" / "report.html")
    page = path.read_text()
    assert page.count(plotly_js()) == 1 and page.count("<script") == 2  # the library, then one figure
    assert "rmse <b>1.235</b>" in page and "not available: the fit recorded no per-epoch metrics" in page
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left
    (curves,) = figure_json(page)
    assert [(t["name"], len(t["y"]["bdata"]) > 0 if isinstance(t["y"], dict) else len(t["y"])) for t in curves] \
        == [("train", 3), ("validation", 3)]  # the learning rate is not a measure


def test_regression_figures_hold_every_row_and_deciles(tmp_path):
    rng = np.random.default_rng(0)
    actual = rng.gamma(2.0, 6.0, 2000)
    predicted = actual + rng.normal(0, 1 + actual / 10)
    scatter = figures.predicted_vs_actual(actual, predicted, "fare")
    assert len(scatter.data[0].x) == 2000 and scatter.data[1].name == "predicted = actual"
    boxes = figures.residuals_by_decile(actual, predicted)
    assert len(boxes.data) == 10 and sum(len(b.y) for b in boxes.data) == 2000
    assert np.allclose(np.sort(np.concatenate([b.y for b in boxes.data])), np.sort(actual - predicted))
    bars = figures.importance_bars({"distance": 90.0, "hour": 9.0, "day": 1.0}, "gain")
    assert list(bars.data[0].y) == ["day", "hour", "distance"] and np.isclose(sum(bars.data[0].x), 1.0)

    report = Report("r")
    sections.regression(report, actual, predicted, "fare", rows_total=10_000, importance={})
    page = report.render()
    assert "2,000 test rows sampled of 10,000" in page
    assert "Feature importance by gain</h2>\n<p class=note>not available: the model made no split" in page


def test_classification_figures_agree_with_sklearn(scored_classes):
    labels, probabilities = scored_classes
    predicted = probabilities.argmax(axis=1)
    report = Report("c")
    sections.classification(report, labels, probabilities, CLASSES, importance={"f0": 1.0})
    titles = [s.title for s in report.sections]
    assert titles == ["Confusion matrix", "Precision and recall per class", "ROC curves (one class against the rest)",
                      "Precision-recall curves", "Calibration", "Feature importance by gain"]
    confusion = figures.confusion_matrix_heatmap(np.array([[5, 1], [2, 8]]), ["a", "b"])
    assert np.allclose(confusion.data[0].z, [[5 / 6, 1 / 6], [0.2, 0.8]])
    precision, recall = sections.per_class_rates(sections.confusion_counts(labels, predicted, 3))
    assert np.allclose(precision, precision_score(labels, predicted, average=None))
    assert np.allclose(recall, recall_score(labels, predicted, average=None))
    roc = figures.roc_curves(labels, probabilities, CLASSES)
    assert [t.name.split(" (")[0] for t in roc.data] == [*CLASSES, "chance"]
    # Calibration: observed share correct per confidence bin, with the counts below
    calibration = figures.calibration(labels, probabilities)
    assert len(calibration.data[2].x) == 600 and 0.7 < np.mean(calibration.data[0].y) <= 1.0


def test_one_class_sample_says_why_curves_are_missing(scored_classes):
    labels, probabilities = scored_classes
    report = Report("c")
    sections.classification(report, np.zeros(50, dtype=int), probabilities[:50], CLASSES)
    page = report.render()
    assert page.count("not available: every sampled test row is of one class") == 2


def test_image_grids_keep_square_pixels_and_captions():
    rng = np.random.default_rng(2)
    images, labels = rng.random((20, 28, 28)), np.arange(20) % 3
    probabilities = np.eye(3)[(labels + 1) % 3] * 0.9 + 0.1 / 3  # every row wrong, confidently
    report = Report("i")
    sections.most_confident_mistakes(report, images, labels, probabilities, CLASSES, n=12)
    (grid,) = [s for s in report.sections]
    figure = figures.image_grid([("a", images[0]), ("b", images[1])], columns=2)
    assert figure.layout.yaxis.scaleanchor == "x" and figure.layout.yaxis2.scaleanchor == "x2"
    assert "dog 93%\\u003cbr\\u003e(is cat)" in grid.render()  # plotly escapes < and > in its JSON
    fields = Report("f")
    sections.fields(fields, images[:3], images[:3] + 0.1, n=2, inputs=images[:3])
    assert len(figure_json(fields.render())[0]) == 8  # 2 samples x (input, true, predicted, error)


def test_profiles_and_drift():
    rng = np.random.default_rng(3)
    import pandas as pd
    base = prediction_profile(pd.Series(rng.normal(10, 2, 4000)))
    same = prediction_profile(pd.Series(rng.normal(10, 2, 4000)))
    shifted = prediction_profile(pd.Series(rng.normal(12, 2, 4000)))
    assert base["kind"] == "numeric" and len(base["sample"]) == 2000 and len(base["quantiles"]) == 21
    assert drift(same, base)["ks_statistic"] < 0.06 < 0.3 < drift(shifted, base)["ks_statistic"]
    assert 1.5 < drift(shifted, base)["median_shift"] < 2.5
    classes = prediction_profile(pd.Series([np.array([0.9, 0.1]), np.array([0.2, 0.8])] * 5), ["a", "b"])
    assert classes == {"kind": "classes", "rows": 10, "classes": ["a", "b"], "shares": [0.5, 0.5]}
    fields = prediction_profile(pd.Series([[[1.0, 3.0], [2.0, 2.0]]] * 3))
    assert fields["quantity"] == "mean of the predicted values per row" and fields["sample"] == [2.0] * 3
    assert drift(classes, base) == {}
    report = Report("s")
    gaps = sections.prediction_drift(report, shifted, None, "training run")
    assert gaps == {} and "training run recorded no prediction profile" in report.render()


def test_spark_samples_are_bounded_seeded_and_name_vector_slots(spark):
    from pyspark.ml.feature import OneHotEncoder, VectorAssembler

    df = spark.range(0, 3000).selectExpr("id", "cast(id % 3 as double) as colour", "id * 0.5 as size",
                                         "array(id, id + 1) as pair")
    first = sample_rows(df, ["id", "pair"], max_rows=500, seed=1)
    assert len(first) <= 500 and first["id"].tolist() == sample_rows(df, ["id", "pair"], 500, seed=1)["id"].tolist()
    assert first["id"].max() > 2000  # spread over the data, not its head
    assert stacked(first["pair"]).shape == (len(first), 2)
    encoded = OneHotEncoder(inputCols=["colour"], outputCols=["colour_vec"]).fit(df).transform(df)
    assembled = VectorAssembler(inputCols=["colour_vec", "size"], outputCol="features").transform(encoded)
    assert vector_slot_names(assembled, "features") == ["colour_vec_0", "colour_vec_1", "size"]
    assert len(stacked(sample_rows(assembled, ["features"], 10)["features"])[0]) == 3
