"""The base of the stateless feature stages: a Transformer whose transform is a pure DataFrame function.

Saved by its Params (DefaultParamsWritable), so a fitted PipelineModel that contains it reloads anywhere
the ``features`` package is importable, and scoring applies exactly the transform training saw.
"""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable


class StatelessStage(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Subclasses declare Params on the class and implement ``_transform`` with a pure function."""

    @keyword_only
    def setParams(self, **kwargs):
        return self._set(**kwargs)
