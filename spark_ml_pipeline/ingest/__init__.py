"""Ingest: input files on any Hadoop filesystem, validation with a quarantine (every row valid or quarantined
with a reason), a check of a sample of the input before the ingest (nothing written), the types an undescribed
input holds, datasets built once, files shipped inside packages, and the Fashion-MNIST data set (read by several
pipelines). Its surface is its modules."""

__all__ = ["check", "fashion_mnist", "files", "if_absent", "inference", "ledger", "packaged", "quarantine", "tables"]
