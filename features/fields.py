"""Features for fields on a regular grid (PDE surrogates)."""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features.stages import StatelessStage


def with_grid_coordinates(df: DataFrame, column: str, height: int, width: int, output: str = "features") -> DataFrame:
    """Append each grid point's normalised (row, column) position to its value: an (H, W, 3) field
    flattened channel-last. Convolutions are translation-invariant, but a PDE solution with boundary
    conditions is not: the coordinates tell the network where a point lies (the positional encoding
    neural-operator examples use)."""
    def point(i):
        return F.array(F.col(column)[i].cast("float"),
                       (F.floor(i / width) / max(height - 1, 1)).cast("float"),
                       ((i % width) / max(width - 1, 1)).cast("float"))

    return df.withColumn(output, F.flatten(F.transform(F.sequence(F.lit(0), F.lit(height * width - 1)), point)))


class GridCoordinates(StatelessStage, HasInputCol, HasOutputCol):
    """:func:`with_grid_coordinates` as a stage, or a plain copy of the field when ``coordinates`` is off."""

    height = Param(Params._dummy(), "height", "grid rows", TypeConverters.toInt)
    width = Param(Params._dummy(), "width", "grid columns", TypeConverters.toInt)
    coordinates = Param(Params._dummy(), "coordinates", "append (row, column) channels", TypeConverters.toBoolean)

    @keyword_only
    def __init__(self, *, inputCol: str = "coefficients", outputCol: str = "features", height: int = 16,
                 width: int = 16, coordinates: bool = True):
        super().__init__()
        self._setDefault(inputCol="coefficients", outputCol="features", height=16, width=16, coordinates=True)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        if not self.getOrDefault(self.coordinates):
            return dataset.withColumn(self.getOutputCol(), F.col(self.getInputCol()))
        return with_grid_coordinates(dataset, self.getInputCol(), self.getOrDefault(self.height),
                                     self.getOrDefault(self.width), self.getOutputCol())
