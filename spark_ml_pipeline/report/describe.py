"""What a Keras pipeline's report shows of its scored test set: a describer ``(report, scored) -> profile`` per
kind of output, built by the pipeline (which knows its columns and classes) and called by the trainer.

Each samples the scored Spark DataFrame once (bounded), adds its sections and returns the run's prediction
profile (see :mod:`spark_ml_pipeline.report.profile`)."""
from __future__ import annotations

from dataclasses import dataclass
from pyspark.sql import DataFrame

from spark_ml_pipeline.report import sections
from spark_ml_pipeline.report.document import Report
from spark_ml_pipeline.report.profile import prediction_profile
from spark_ml_pipeline.report.samples import sample_rows, stacked


@dataclass(frozen=True)
class DescribeClasses:
    """Class scores in ``prediction`` (an array per row) against an integer ``label``; with ``image_shape``,
    the most confident mistakes are drawn from ``image_column``."""

    class_names: tuple[str, ...]
    label: str = "label"
    prediction: str = "prediction"
    image_column: str | None = None
    image_shape: tuple[int, ...] | None = None
    max_rows: int = 5000

    def __call__(self, report: Report, scored: DataFrame) -> dict:
        columns = [self.label, self.prediction, *([self.image_column] if self.image_column else [])]
        sample = sample_rows(scored, columns, self.max_rows)
        labels = sample[self.label].to_numpy().astype(int)
        probabilities = stacked(sample[self.prediction])
        sections.classification(report, labels, probabilities, self.class_names)
        if self.image_column:
            sections.most_confident_mistakes(report, stacked(sample[self.image_column], self.image_shape), labels,
                                             probabilities, self.class_names)
        return prediction_profile(sample[self.prediction], self.class_names)


@dataclass(frozen=True)
class DescribeFields:
    """A field predicted per row (``prediction``) against the true ``label`` field, both of ``shape``; the
    input field (first channel of ``input_column``) is drawn beside them when given."""

    label: str
    shape: tuple[int, ...]
    prediction: str = "prediction"
    input_column: str | None = None
    input_shape: tuple[int, ...] | None = None
    samples: int = 4

    def __call__(self, report: Report, scored: DataFrame) -> dict:
        columns = [self.label, self.prediction, *([self.input_column] if self.input_column else [])]
        sample = sample_rows(scored.orderBy("row_id") if "row_id" in scored.columns else scored, columns, 200)
        truth, predicted = stacked(sample[self.label], self.shape), stacked(sample[self.prediction], self.shape)
        inputs = None
        if self.input_column:
            inputs = stacked(sample[self.input_column], self.input_shape)
            inputs = inputs[..., 0] if inputs.ndim == 4 else inputs
        sections.fields(report, truth, predicted, self.samples, inputs)
        return prediction_profile(sample[self.prediction])


@dataclass(frozen=True)
class DescribeReconstructions:
    """Images (``input_column``) and their reconstructions (``prediction``), both of ``shape``."""

    input_column: str
    shape: tuple[int, ...]
    prediction: str = "prediction"
    samples: int = 8

    def __call__(self, report: Report, scored: DataFrame) -> dict:
        sample = sample_rows(scored, [self.input_column, self.prediction], 200)
        sections.reconstructions(report, stacked(sample[self.input_column], self.shape),
                                 stacked(sample[self.prediction], self.shape), self.samples)
        return prediction_profile(sample[self.prediction])
