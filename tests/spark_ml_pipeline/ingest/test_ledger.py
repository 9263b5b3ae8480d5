"""The incremental-ingest ledger: what is new or changed, one file per run date."""
from spark_ml_pipeline.ingest import ledger
from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.runtime.io import to_uri


def entry(uri, size, mtime, run_date="2026-01-01"):
    return ledger.LedgerEntry(uri=uri, size=size, mtime=mtime, run_date=run_date)


def test_new_or_changed_compares_uri_size_and_mtime():
    seen = [entry("file:/in/a.csv", 10, 1000), entry("file:/in/b.csv", 20, 2000)]
    files = [("file:/in/a.csv", 10, 1000), ("file:/in/b.csv", 21, 2000), ("file:/in/c.csv", 5, 3000),
             ("file:/in/d.csv", 5, 3000)]
    assert ledger.new_or_changed(files, seen) == files[1:]
    assert ledger.new_or_changed(files[:1], seen) == []
    touched = [("file:/in/a.csv", 10, 1001)]
    assert ledger.new_or_changed(touched, seen) == touched


def test_ledger_round_trip_on_a_filesystem(spark, tmp_path):
    for name in ("m=1/a.csv", "m=1/b.csv", "m=2/c.csv", "other/d.csv"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_text("x\n1\n")
    files = list_input_files(spark, to_uri(tmp_path / "in"))

    location = ledger.ledger_location(to_uri(tmp_path / "store" / "ingest"))
    assert ledger.read_ledger(spark, location) == []
    ledger.record(spark, location, "2026-01-01", files[:2])
    ledger.record(spark, location, "2026-01-02", files[2:3])
    ledger.record(spark, location, "2026-01-02", files[2:])  # a rerun replaces its date's file
    entries = ledger.read_ledger(spark, location)
    assert [e.stat for e in entries] == files[:2] + files[2:]
    assert {e.run_date for e in entries[2:]} == {"2026-01-02"}
    assert [e.stat for e in ledger.read_ledger(spark, location, exclude_run_date="2026-01-02")] == files[:2]
    assert sorted(p.name for p in (tmp_path / "store" / "ingest" / "_ledger").iterdir()
                  if not p.name.startswith(".")) == ["run_date=2026-01-01.json", "run_date=2026-01-02.json"]
