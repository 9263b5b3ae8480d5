"""Judging generated images without any download: the project's own Fashion-MNIST classifier scores them.

Generated images (in [0, 1]) become pixels 0..255 like the ingested images, and go through the classifier's
whole committed pipeline (``fashion_mnist`` run's model: NormalisePixels, then the Keras CNN), through Spark.

Metrics (``judge_`` prefix on the run):

* ``confident_share``: share of samples whose top class probability is >= ``confidence`` (0.9): images the
  classifier recognises clearly;
* ``class_entropy`` (nats): entropy of the distribution of predicted classes over the samples; a generator
  that covers all 10 classes evenly reaches log(10) = 2.303; ``class_entropy_ratio`` = that / log(10)
  (goal >= 0.9); mode collapse shows as a low value;
* ``requested_class_share`` (conditional GAN): share classified as the class the generator was asked for;
* ``real_confident_share`` / ``real_accuracy``: the same classifier on as many real test images, for scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.fashion_mnist import CLASS_NAMES
from spark_ml_pipeline.train.models.gan import GANSpec

CLASSES = 10


@dataclass(frozen=True)
class Judgement:
    """The judge's figures (``judge_`` metrics of the run) and, per class asked for, what it saw."""

    metrics: dict
    per_class: list[dict]


def prediction_metrics(probabilities: np.ndarray, requested: np.ndarray | None, confidence: float) -> dict:
    """The judge's figures from class probabilities (N, classes) and, if any, the requested classes (N,)."""
    predicted = probabilities.argmax(axis=1)
    shares = np.bincount(predicted, minlength=probabilities.shape[1]) / len(predicted)
    entropy = float(-sum(p * math.log(p) for p in shares if p > 0))
    metrics = {"confident_share": float((probabilities.max(axis=1) >= confidence).mean()),
               "class_entropy": entropy, "class_entropy_ratio": entropy / math.log(probabilities.shape[1]),
               "samples": len(predicted)}
    if requested is not None:
        metrics["requested_class_share"] = float((predicted == requested).mean())
    return metrics


def per_class_rows(probabilities: np.ndarray, requested: np.ndarray, confidence: float) -> list[dict]:
    """Per class asked for: how many samples, the share judged as that class, the share judged confidently."""
    predicted, top = probabilities.argmax(axis=1), probabilities.max(axis=1)
    rows = []
    for label in np.unique(requested):
        asked = requested == label
        rows.append({"class asked for": CLASS_NAMES[label], "samples": int(asked.sum()),
                     "judged that class": float((predicted[asked] == label).mean()),
                     f"top probability >= {confidence}": float((top[asked] >= confidence).mean()),
                     "most often judged as": CLASS_NAMES[np.bincount(predicted[asked]).argmax()]})
    return rows


def as_pixels(images: DataFrame, image_column: str = "image") -> DataFrame:
    """Images in [0, 1] -> ``pixels`` 0..255 (array<smallint>), the ingested images' form."""
    return images.withColumn("pixels", F.transform(F.col(image_column),
                                                   lambda v: F.round(F.least(F.greatest(v, F.lit(0.0)), F.lit(1.0))
                                                                     * 255).cast("smallint")))


def _probabilities(classifier: PipelineModel, rows: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    scored = classifier.transform(rows.select("row_id", "label", "pixels")).select("row_id", "label", "prediction")
    frame = scored.orderBy("row_id").toPandas()
    return np.stack(frame["prediction"].to_numpy()).astype("float64"), frame["label"].to_numpy()


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], bound: float | None) -> np.ndarray:
    """Standard normal draws, each redrawn until it lies within ``±bound`` (None: not truncated): the
    "truncation trick" trades the samples' variety for their fidelity."""
    values = rng.standard_normal(shape)
    if bound is None:
        return values
    outside = np.abs(values) > bound
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > bound
    return values


def noise_rows(spark: SparkSession, spec: GANSpec, per_class: int, seed: int,
               truncation: float | None = None) -> DataFrame:
    """``per_class`` rows per class of (row_id, label, noise), deterministic by ``seed``; noise truncated to
    ``±truncation`` if given."""
    count = per_class * (spec.classes if spec.conditional else CLASSES)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"row_id": np.arange(count), "label": (np.arange(count) % spec.classes).astype("int32"),
                          "noise": list(truncated_normal(rng, (count, spec.noise_dim), truncation).astype("float32"))})
    return spark.createDataFrame(frame, "row_id long, label int, noise array<float>")


def judge(spark: SparkSession, generator: PipelineModel, spec: GANSpec, classifier_uri: str, per_class: int,
          confidence: float, seed: int, real_images: DataFrame | None = None,
          truncation: float | None = None) -> Judgement:
    """Generate ``per_class`` images per class through Spark with ``generator`` (noise + label -> image) and
    let the classifier at ``classifier_uri`` (a committed ``fashion_mnist`` model) judge them."""
    classifier = PipelineModel.load(classifier_uri)
    generated = as_pixels(generator.transform(noise_rows(spark, spec, per_class, seed, truncation)))
    probabilities, requested = _probabilities(classifier, generated)
    metrics = prediction_metrics(probabilities, requested if spec.conditional else None, confidence)
    if real_images is not None:
        real, labels = _probabilities(classifier, real_images.limit(len(probabilities)))
        metrics["real_confident_share"] = float((real.max(axis=1) >= confidence).mean())
        metrics["real_accuracy"] = float((real.argmax(axis=1) == labels).mean())
    return Judgement({f"judge_{key}": value for key, value in metrics.items()},
                     per_class_rows(probabilities, requested, confidence) if spec.conditional else [])
