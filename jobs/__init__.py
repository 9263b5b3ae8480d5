"""Thin spark-submit / ``python -m`` entry points: argument parsing lives in spark_ml_pipeline.runtime.cli."""
