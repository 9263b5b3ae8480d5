"""Batch scoring of new data with a registered model (:mod:`spark_ml_pipeline.score.batch`)."""
