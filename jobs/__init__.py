"""Thin spark-submit / ``python -m`` entry points: argument parsing lives in pipelines.cli."""
