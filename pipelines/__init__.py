"""The named pipelines: one package each, declaring itself once as ``PIPELINE`` in its ``__init__``.

The library finds them by name (:mod:`spark_ml_pipeline.runtime.discovery`); a configuration file in
``conf/pipelines/`` whose ``kind`` names one of these packages is a pipeline of that kind (``kind: tabular``
brings any tabular data set without Python).
"""
