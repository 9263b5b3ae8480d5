"""A ledger of the input files already ingested, for incremental ingest.

One small JSON file per run date, ``<ingest dir>/_ledger/run_date=D.json``, lists the files that run ingested
as (uri, size, mtime, run date). A file is *new* when no other run date's ledger lists it with the same size
and modification time, so a changed file (rewritten, touched) is ingested again. A run's ledger file is written
atomically after its data partition is committed; re-running a date ignores that date's own ledger and
replaces it, so a rerun ingests the same files again (plus any that appeared since) and stays idempotent.
If a run dies between the commit and the ledger write, re-run the same date.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output, join

LEDGER_DIR = "_ledger"

FileStat = tuple[str, int, int]  # (uri, size, mtime in ms), as list_input_files returns them


@dataclass(frozen=True)
class LedgerEntry:
    uri: str
    size: int
    mtime: int
    run_date: str

    @property
    def stat(self) -> FileStat:
        return self.uri, self.size, self.mtime


def ledger_location(ingest_root: str) -> str:
    """``<ingest root>/_ledger``: beside the ``run_date=D`` partitions, hidden from Spark by its underscore."""
    return join(ingest_root, LEDGER_DIR)


def _entry_file(location: str, run_date: str) -> str:
    return join(location, f"run_date={run_date}.json")


def read_ledger(spark, location: str, exclude_run_date: str | None = None) -> list[LedgerEntry]:
    """Every entry of every run date (but ``exclude_run_date``), oldest run date first."""
    fs = HadoopFS(spark)
    if not fs.exists(location):
        return []
    entries = []
    for uri, _, _ in fs.list_files(location):
        name = uri.rsplit("/", 1)[-1]
        if not (name.startswith("run_date=") and name.endswith(".json")):
            continue
        if exclude_run_date and name == f"run_date={exclude_run_date}.json":
            continue
        entries.extend(LedgerEntry(**item) for item in json.loads(fs.read_text(uri))["files"])
    return sorted(entries, key=lambda e: (e.run_date, e.uri))


def new_or_changed(files: Iterable[FileStat], entries: Iterable[LedgerEntry]) -> list[FileStat]:
    """The files no entry lists with the same (uri, size, mtime), sorted."""
    seen = {entry.stat for entry in entries}
    return sorted(f for f in (tuple(f) for f in files) if (f[0], int(f[1]), int(f[2])) not in seen)


def record(spark, location: str, run_date: str, files: Sequence[FileStat]) -> str:
    """Write (replace) the run date's ledger file atomically; returns its URI."""
    target = _entry_file(location, run_date)
    payload = {"run_date": run_date,
               "files": [asdict(LedgerEntry(uri=u, size=int(s), mtime=int(m), run_date=run_date))
                         for u, s, m in sorted(files)]}
    with atomic_output(spark, target) as temporary:
        HadoopFS(spark).write_text(temporary, json.dumps(payload, indent=2))
    return target
