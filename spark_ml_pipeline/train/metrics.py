"""Test metrics computed by Spark aggregations (one pass each), for every task the trainers serve."""
from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from features.arrays import argmax
from spark_ml_pipeline.runtime.errors import DataError


def _require_rows(n: int, what: str) -> None:
    if not n:
        raise DataError(f"cannot evaluate on an empty {what} split: no rows to score "
                        "(check the split fractions and the data that passed validation)")


def _regression_aggregates(label: str, prediction: str) -> list[Column]:
    error = F.col(prediction) - F.col(label)
    return [F.count(F.lit(1)).alias("n"), F.avg(error * error).alias("mse"), F.avg(F.abs(error)).alias("mae"),
            F.var_pop(label).alias("variance")]


def _regression_result(row, what: str) -> dict[str, float]:
    _require_rows(row["n"] if row else 0, what)
    mse, variance = float(row["mse"]), float(row["variance"] or 0.0)
    return {"rmse": mse ** 0.5, "mae": float(row["mae"]), "r2": 1.0 - mse / variance if variance else 0.0,
            "n": int(row["n"])}


def regression_metrics(predictions: DataFrame, label: str, prediction: str = "prediction",
                       what: str = "test") -> dict[str, float]:
    """RMSE, MAE and R² in one aggregation pass; ``n`` is the number of rows scored."""
    return _regression_result(predictions.agg(*_regression_aggregates(label, prediction)).first(), what)


def regression_metrics_by(predictions: DataFrame, label: str, by: str, parts: list[str],
                          prediction: str = "prediction") -> dict[str, dict[str, float]]:
    """:func:`regression_metrics` of every part (value of column ``by``) in one pass over ``predictions``, e.g.
    the test and validation splits scored together; an empty part is a DataError, as for one split."""
    rows = {r[by]: r for r in predictions.groupBy(by).agg(*_regression_aggregates(label, prediction)).collect()}
    return {part: _regression_result(rows.get(part), part) for part in parts}


def confusion_counts(scored: DataFrame, label: str, predicted_class: Column) -> dict[tuple[int, int], int]:
    """(true class, predicted class) -> rows, from one aggregation."""
    rows = scored.select(F.col(label).cast("int").alias("y"), predicted_class.cast("int").alias("p")) \
        .groupBy("y", "p").count().collect()
    return {(r["y"], r["p"]): int(r["count"]) for r in rows}


def classification_metrics_from_counts(counts: dict[tuple[int, int], int], classes: int | None = None) -> dict:
    """Accuracy, macro-F1 and per-class precision / recall from confusion counts."""
    total = sum(counts.values())
    labels = sorted({y for y, _ in counts} | {p for _, p in counts} | set(range(classes or 0)))
    f1s, per_class = [], {}
    for c in labels:
        tp = counts.get((c, c), 0)
        fp = sum(n for (y, p), n in counts.items() if y != c and p == c)
        fn = sum(n for (y, p), n in counts.items() if y == c and p != c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        per_class[c] = {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0}
    correct = sum(n for (y, p), n in counts.items() if y == p)
    return {"accuracy": correct / total if total else 0.0, "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
            "rows": total, "per_class": per_class}


def classification_metrics(scored: DataFrame, label: str = "label", prediction: str = "prediction",
                           classes: int | None = None) -> dict:
    """Accuracy and macro-F1 of class scores in an array column (the argmax is the predicted class)."""
    metrics = classification_metrics_from_counts(confusion_counts(scored, label, argmax(F.col(prediction))), classes)
    metrics.pop("per_class")
    return metrics


def probabilistic_metrics(scored: DataFrame, label: str, probability: Column, classes: int,
                          what: str = "test") -> dict[str, float]:
    """Log loss (always) and ROC AUC (binary) of class probabilities in an array column."""
    p_true = F.greatest(F.least(F.element_at(probability, F.col(label).cast("int") + 1), F.lit(1 - 1e-15)),
                        F.lit(1e-15))
    row = scored.agg(F.count(F.lit(1)).alias("n"), F.avg(-F.log(p_true)).alias("log_loss")).first()
    _require_rows(row["n"], what)
    metrics = {"log_loss": float(row["log_loss"])}
    if classes == 2:
        metrics["auc"] = binary_auc(scored, label, F.element_at(probability, 2))
    return metrics


def binary_auc(scored: DataFrame, label: str, score: Column) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) statistic, ties counted half, in Spark."""
    ranked = (scored.select(F.col(label).cast("int").alias("y"), score.alias("s"))
              .withColumn("position", F.row_number().over(Window.orderBy("s")))
              .withColumn("rank", F.avg("position").over(Window.partitionBy("s"))))
    row = ranked.agg(F.sum(F.when(F.col("y") == 1, F.col("rank"))).alias("rank_sum"),
                     F.sum(F.when(F.col("y") == 1, 1).otherwise(0)).alias("pos"),
                     F.sum(F.when(F.col("y") == 0, 1).otherwise(0)).alias("neg")).first()
    pos, neg = int(row["pos"] or 0), int(row["neg"] or 0)
    if not pos or not neg:
        return math.nan
    return float((row["rank_sum"] - pos * (pos + 1) / 2) / (pos * neg))


def baseline_metrics(train: DataFrame, test: DataFrame, label: str, classes: list[str] | None = None) -> dict:
    """What a model without features scores on the test rows: the training mean (regression, ``classes`` None),
    or the training class frequencies (log loss) and the majority class (accuracy) of a label index."""
    if classes is None:
        mean = train.agg(F.avg(label)).first()[0]
        error = F.col(label) - F.lit(mean)
        row = test.agg(F.sqrt(F.avg(error ** 2)), F.avg(F.abs(error))).first()
        return {"baseline_test_rmse": float(row[0]), "baseline_test_mae": float(row[1])}
    frequency = {int(r[0]): r[1] for r in train.groupBy(label).count().collect()}
    total = sum(frequency.values())
    majority = max(frequency, key=frequency.get)
    prior = F.element_at(F.array(*[F.lit(frequency.get(k, 0) / total) for k in range(len(classes))]),
                         F.col(label).cast("int") + 1)
    row = test.agg(F.avg((F.col(label).cast("int") == majority).cast("double")),
                   F.avg(-F.log(F.greatest(prior, F.lit(1e-15))))).first()
    return {"baseline_test_accuracy": float(row[0]), "baseline_test_log_loss": float(row[1])}
