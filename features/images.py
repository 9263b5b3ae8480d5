"""Image features: pixel arrays normalised in Spark, and the stages that turn image rows into features."""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame

from features.arrays import scale
from features.stages import StatelessStage


def normalise_pixels(df: DataFrame, column: str = "pixels", output: str = "features",
                     max_value: float = 255.0) -> DataFrame:
    """Pixels from [0, max_value] to [0, 1] floats."""
    return df.withColumn(output, scale(df[column], 1.0 / max_value))


class NormalisePixels(StatelessStage, HasInputCol, HasOutputCol):
    """:func:`normalise_pixels` as a stage (saved with the model, so scoring normalises the same way)."""

    maxValue = Param(Params._dummy(), "maxValue", "the largest pixel value", TypeConverters.toFloat)

    @keyword_only
    def __init__(self, *, inputCol: str = "pixels", outputCol: str = "features", maxValue: float = 255.0):
        super().__init__()
        self._setDefault(inputCol="pixels", outputCol="features", maxValue=255.0)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return normalise_pixels(dataset, self.getInputCol(), self.getOutputCol(), self.getOrDefault(self.maxValue))


def pixel_feature_stages() -> list:
    """Image rows' ``pixels`` (0..255) -> ``features`` in [0, 1]: what the image models read and scoring applies."""
    return [NormalisePixels(inputCol="pixels", outputCol="features")]
