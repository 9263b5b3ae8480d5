"""Store: MLflow tracking (experiments, runs, atomically committed models), the one run recorder, lineage,
and the model registry with its champion alias. Its surface is its modules."""

__all__ = ["lineage", "local_database", "recorder", "registry", "tracking", "ui"]
