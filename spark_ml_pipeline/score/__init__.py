"""Batch scoring of new data with a registered model (:mod:`~spark_ml_pipeline.score.batch`), the scorer
contract a scorable pipeline meets (:mod:`~spark_ml_pipeline.score.scorer`) and the scoring report. Its surface
is its modules."""

__all__ = ["batch", "report", "scorer"]
