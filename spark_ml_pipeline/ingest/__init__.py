"""Ingest: input files on any Hadoop filesystem, validation with a quarantine (every row valid or quarantined
with a reason), datasets built once, and files shipped inside packages. Its surface is its modules."""

__all__ = ["files", "if_absent", "ledger", "packaged", "quarantine", "tables"]
