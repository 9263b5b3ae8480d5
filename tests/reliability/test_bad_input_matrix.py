"""The bad-input matrix: one table of everything wrong an input can be, run through both kinds of ingest.

Each case writes real files (CSV, gzip'd CSV, Parquet) and states its outcome: a one-line error naming the file,
column or key, or the rows that must be valid and quarantined (by reason). For every case that ingests, the rows
the test wrote (its own count, not Spark's) equal rows valid + rows quarantined, the committed data holds
exactly those rows, and every quarantined row keeps its reason and what it was read from. The same table runs
through the taxi pipeline (the TLC schema and its aliases) and a tabular pipeline (a schema declared in a conf
file). docs/reliability.md lists the outcomes.
"""
from __future__ import annotations

import csv
import gzip
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipelines.tabular.ingest import ingest as tabular_ingest
from pipelines.tabular.ingest import ingest_location
from pipelines.tabular.pipeline import training_data
from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.generator import MANIFEST, read_manifest
from pipelines.taxi_fare.ingest import ingest as taxi_ingest
from pipelines.taxi_fare.config import ingest_location as taxi_ingest_location
from pipelines.taxi_fare.train import split_trips
from spark_ml_pipeline.ingest.quarantine import STATS, read_quarantine, read_stats, read_valid
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError, DataError, PipelineError
from spark_ml_pipeline.runtime.io import local_path, to_uri
from spark_ml_pipeline.score.batch import resolve_model
from spark_ml_pipeline.store.tracking import Store

ROOT = Path(__file__).resolve().parents[2]


# --- the two kinds of pipeline, seen alike -----------------------------------------------------------

@dataclass
class Kind:
    name: str
    header: list[str]
    good: Callable[[int], dict]  # a valid row (file column -> text)
    required: str  # a required numeric column (file name = declared name)
    optional: str  # an optional numeric column
    label: str
    time: str  # a timestamp column
    too_early: str  # a timestamp its rules refuse
    ingest: Callable = None  # (spark, input dir, output, policies, format) -> (IngestStats, its location)
    parquet_types: dict = field(default_factory=dict)  # column -> pandas dtype of a typed file
    load: Callable = None  # (overrides) -> the pipeline's validated config
    split: Callable = None  # (spark, config) -> the splits of the ingested rows
    overrides: dict = field(default_factory=dict)  # bad override of each kind: unknown / wrong type / missing

    def rows(self, n: int, start: int = 0) -> list[dict]:
        return [self.good(i) for i in range(start, start + n)]


def _taxi_row(i: int) -> dict:
    minute = i % 50
    return {"vendor_id": "CMT", "pickup_datetime": f"2015-01-15 10:{minute:02d}:00",
            "dropoff_datetime": f"2015-01-15 11:{minute:02d}:00", "passenger_count": str(1 + i % 4),
            "trip_distance": f"{1.0 + i * 0.1:.2f}", "pickup_longitude": "-73.98", "pickup_latitude": "40.75",
            "rate_code": "1", "store_and_fwd_flag": "N", "dropoff_longitude": "-73.97",
            "dropoff_latitude": "40.76", "payment_type": "CRD", "fare_amount": f"{5.0 + i:.2f}",
            "surcharge": "0.5", "mta_tax": "0.5", "tip_amount": "1.0", "tolls_amount": "0", "total_amount": "12.0"}


def _tabular_row(i: int) -> dict:
    return {"id": str(i), "when": f"2020-03-{1 + i % 28:02d} 08:00:00", "x": f"{i * 0.5:.2f}",
            "z": f"{i % 7}.25", "color": ["red", "green", "blue"][i % 3], "y": f"{2.0 * i + 1:.2f}"}


TABULAR = {"pipeline": "matrix_tabular", "kind": "tabular",
           "input": {"uri": "set-per-case", "format": "csv"},
           "schema": {"id": "int", "when": "timestamp", "x": "double", "z": "double", "color": "string",
                      "y": "double"},
           "label": "y", "task": "regression",
           "features": {"numeric": ["x", "z"], "categorical": ["color"]},
           "validation": {"required": ["id", "x"], "ranges": {"when": {"min": "2000-01-01", "max": "2030-12-31"}}}}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> dict[str, Kind]:
    conf = tmp_path_factory.mktemp("matrix-conf")
    shutil.copy(ROOT / "conf" / "base.yaml", conf / "base.yaml")
    shutil.copytree(ROOT / "conf" / "env", conf / "env")
    (conf / "pipelines").mkdir()
    (conf / "pipelines" / "matrix_tabular.yaml").write_text(yaml.safe_dump(TABULAR, sort_keys=False))
    store = tmp_path_factory.mktemp("matrix-store")

    def load_tabular(overrides):
        return load_pipeline("matrix_tabular", ("local",), ["run_date=2026-01-15", *overrides], conf)[0]

    def load_taxi(overrides):
        return load_pipeline("taxi_fare", ("local",), ["run_date=2026-01-15", *overrides])[0]

    def run_tabular(spark, source: Path, output: str, policies: dict, fmt: str):
        # Accounting is what the matrix checks, also where most rows are bad: the share check (which fails such an
        # ingest after committing it) is tested on its own (tests/pipelines/tabular/test_quarantine_share.py).
        config = load_tabular([f"store.root={store / output}", f"input.uri={source}", f"input.format={fmt}",
                               "ingest.max_quarantine_fraction=1", *[f"ingest.{k}={v}" for k, v in policies.items()]])
        return tabular_ingest(spark, config), ingest_location(config)

    def run_taxi(spark, source: Path, output: str, policies: dict, fmt: str):
        location = to_uri(store / output / "ingest")
        return taxi_ingest(spark, str(source), location, fmt, **policies), location

    taxi = Kind("taxi_fare", tlc.FILE_COLUMNS[tlc.LEGACY], _taxi_row, required="trip_distance",
                optional="rate_code", label="fare_amount", time="pickup_datetime", too_early="2001-05-01 10:00:00",
                ingest=run_taxi, parquet_types={"trip_distance": "float64", "passenger_count": "int64"},
                load=load_taxi, split=lambda spark, config: split_trips(spark, config)[0],
                overrides={"unknown": "ingest.fare_maxx=3", "wrong_type": "ingest.fare_max=abc",
                           "missing": "store.root="})
    tabular = Kind("tabular", list(_tabular_row(0)), _tabular_row, required="x", optional="z", label="y",
                   time="when", too_early="1990-05-01 10:00:00", ingest=run_tabular,
                   parquet_types={"x": "float64", "id": "int64"}, load=load_tabular,
                   split=lambda spark, config: training_data(spark, config).splits,
                   overrides={"unknown": "validation.requird=[x]", "wrong_type": "model.max_depth=deep",
                              "missing": "input.uri="})
    return {"taxi_fare": taxi, "tabular": tabular}


# --- writing files -----------------------------------------------------------------------------------

def csv_text(header: list[str], rows: list[dict], extra_lines=()) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(c, "") for c in header])
    for line in extra_lines:
        buffer.write(line + "\n")
    return buffer.getvalue()


def write(path: Path, text: str | bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return len(data)


def typed_frame(kind: Kind, rows: list[dict], types: dict) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=kind.header)
    for column, dtype in types.items():
        frame[column] = pd.to_numeric(frame[column]).astype(dtype)
    return frame


def truncated_gzip(text: str) -> bytes:
    packed = gzip.compress(text.encode())
    return packed[: len(packed) // 2]


# --- the cases ---------------------------------------------------------------------------------------

@dataclass
class Case:
    """``write(kind, dir)`` writes the input and returns the rows it holds (readable files only); the outcome is
    ``error`` (substrings of the one-line message) or the valid rows and the quarantine by reason."""

    id: str
    write: Callable[[Kind, Path], int]
    valid: Callable[[Kind], int] | int | None = None
    reasons: Callable[[Kind], dict] | dict = field(default_factory=dict)
    error: Callable[[Kind, Path], list[str]] | None = None
    policies: dict = field(default_factory=dict)
    fmt: str = "csv"
    check: Callable | None = None  # (kind, stats, valid frame, quarantine frame) -> None: more to assert


def _value(spec, kind):
    return spec(kind) if callable(spec) else spec


def _rows_with(kind: Kind, n: int, **changes) -> list[dict]:
    rows = kind.rows(n)
    for column, value in changes.items():
        rows[0][getattr(kind, column, column)] = value
    return rows


def _clean(kind, d):
    write(d / "a.csv", csv_text(kind.header, kind.rows(5)))
    return 5


def _malformed(kind, d):
    line = '"unclosed,' + ",".join(["1"] * (len(kind.header) - 1))
    write(d / "a.csv", csv_text(kind.header, kind.rows(4), [line]))
    return 5


def _short_and_long(kind, d):
    good = [kind.good(9)[c] for c in kind.header]
    write(d / "a.csv", csv_text(kind.header, kind.rows(3), [",".join(good[:-2]), ",".join(good + ["extra"])]))
    return 5


def _missing_required_column(kind, d):
    header = [c for c in kind.header if c != kind.required]
    write(d / "a.csv", csv_text(header, kind.rows(3)))
    return 3


def _extra_columns(kind, d):
    rows = [{**r, "unknown_a": "1", "Unknown B": "x"} for r in kind.rows(4)]
    write(d / "a.csv", csv_text(kind.header + ["unknown_a", "Unknown B"], rows))
    return 4


def _header_order_differs(kind, d):
    write(d / "m1.csv", csv_text(kind.header, kind.rows(3)))
    write(d / "m2.csv", csv_text(list(reversed(kind.header)), kind.rows(4, start=3)))
    return 7


def _order_check(kind, stats, valid, quarantine):
    got = sorted(float(r[kind.required]) for r in valid.select(kind.required).collect())
    assert got == sorted(float(kind.good(i)[kind.required]) for i in range(7))  # mapped by name, not position


def _types_differ_parquet(kind, d):
    (d / "m1.parquet").parent.mkdir(parents=True, exist_ok=True)
    typed_frame(kind, kind.rows(3), kind.parquet_types).to_parquet(d / "m1.parquet")
    as_text = {c: "object" for c in kind.parquet_types}  # the next month's file stores the same columns as text
    typed_frame(kind, kind.rows(3, start=3), {}).astype(as_text).to_parquet(d / "m2.parquet")
    as_double = {c: "float64" for c in kind.parquet_types}  # and the one after as doubles (1.0 for a count)
    typed_frame(kind, kind.rows(2, start=6), as_double).to_parquet(d / "m3.parquet")
    return 8


def _types_differ_csv(kind, d):
    rows = kind.rows(3)
    for row in rows:  # an integer column written as 1.0 (as some years' files do)
        column = "passenger_count" if kind.name == "taxi_fare" else "id"
        row[column] = f"{float(row[column]):.1f}"
    write(d / "m1.csv", csv_text(kind.header, rows))
    write(d / "m2.csv", csv_text(kind.header, kind.rows(2, start=3)))
    return 5


def _truncated_gzip(kind, d):
    write(d / "good.csv.gz", csv_text(kind.header, kind.rows(3)))
    big = csv_text(kind.header, kind.rows(4000, start=3))
    (d / "cut.csv.gz").write_bytes(truncated_gzip(big))
    return 3  # the cut file's rows are not read (skipped or failed)


def _truncated_parquet(kind, d):
    d.mkdir(parents=True, exist_ok=True)
    typed_frame(kind, kind.rows(3), {}).to_parquet(d / "good.parquet")
    typed_frame(kind, kind.rows(3), {}).to_parquet(d / "whole.parquet")
    data = (d / "whole.parquet").read_bytes()
    (d / "whole.parquet").unlink()
    (d / "cut.parquet").write_bytes(data[: len(data) // 2])
    return 3


def _truncated_plain_csv(kind, d):
    text = csv_text(kind.header, kind.rows(4))
    write(d / "a.csv", text[: text.rindex(",") - 1])  # a partial download: the last line cut short
    return 4


def _empty_directory(kind, d):
    (d / "nothing").mkdir(parents=True)
    return 0


def _empty_file_among_others(kind, d):
    write(d / "a.csv", csv_text(kind.header, kind.rows(3)))
    write(d / "b.csv", "")
    write(d / "c.csv", csv_text(kind.header, kind.rows(2, start=3)))
    return 5


def _zero_row_file(kind, d):
    write(d / "a.csv", csv_text(kind.header, kind.rows(3)))
    write(d / "b.csv", csv_text(kind.header, []))
    return 3


def _all_null_optional(kind, d):
    rows = [{**r, kind.optional: ""} for r in kind.rows(4)]
    write(d / "a.csv", csv_text(kind.header, rows))
    return 4


def _non_finite_labels(kind, d):
    rows = kind.rows(5)
    rows[0][kind.label], rows[1][kind.label], rows[2][kind.label] = "NaN", "inf", "-Infinity"
    write(d / "a.csv", csv_text(kind.header, rows))
    return 5


def _duplicates(kind, d):
    rows = kind.rows(3)
    write(d / "a.csv", csv_text(kind.header, rows + [rows[1], rows[1]]))
    write(d / "b.csv", csv_text(kind.header, [rows[2]]))  # a copy in another file too
    return 6


def _timestamps_out_of_range(kind, d):
    rows = kind.rows(4)
    rows[0][kind.time] = kind.too_early
    rows[1][kind.time] = "2015-13-45 25:00:00"  # no such date: does not fit the type
    rows[2][kind.time] = "20155-01-15 10:00:00"  # a timestamp Spark holds, a date no trip has
    write(d / "a.csv", csv_text(kind.header, rows))
    return 4


def _bad_optional_value(kind, d):
    rows = kind.rows(4)
    rows[0][kind.optional] = "n/a?"
    write(d / "a.csv", csv_text(kind.header, rows))
    return 4


def _bad_required_value(kind, d):
    rows = kind.rows(4)
    rows[0][kind.required] = "twelve"
    rows[1][kind.required] = ""
    write(d / "a.csv", csv_text(kind.header, rows))
    return 4


def _duplicated_header(kind, d):
    write(d / "a.csv", csv_text(kind.header + [kind.required], kind.rows(2)))
    return 2


def _optional_check(kind, stats, valid, quarantine):
    assert stats.bad_values == {kind.optional: 1}  # counted, whether the row is kept or quarantined


def _raw_text_kept(kind, stats, valid, quarantine):
    raw = sorted(r["raw_line"] for r in quarantine.collect())
    assert all(raw) and len(raw) == stats.rows_quarantined
    assert any("extra" in line for line in raw) or any("unclosed" in line for line in raw)


def _missing_required_reasons(kind):
    if kind.name == "taxi_fare":
        return {f"bad_value:{kind.required}": 1, "missing_value": 1}
    return {f"bad_value:{kind.required}": 1, f"required:{kind.required}": 1}


CASES = [
    Case("clean", _clean, valid=5),
    Case("malformed_line", _malformed, valid=4, reasons={"malformed_line": 1}, check=_raw_text_kept),
    Case("short_and_long_lines", _short_and_long, valid=3, reasons={"malformed_line": 2}, check=_raw_text_kept),
    Case("missing_required_column", _missing_required_column,
         error=lambda k, d: [str(d / "a.csv"), k.required, "missing required"]),
    Case("extra_unknown_columns", _extra_columns, valid=4),
    Case("header_order_differs", _header_order_differs, valid=7, check=_order_check),
    Case("column_types_differ_parquet", _types_differ_parquet, valid=8, fmt="parquet"),
    Case("integer_written_as_1.0", _types_differ_csv, valid=5),
    Case("truncated_gzip_fails", _truncated_gzip, error=lambda k, d: [str(d / "cut.csv.gz"), "not readable",
                                                                     "Unexpected end of input stream",
                                                                     "on_unreadable_file"]),
    Case("truncated_gzip_skipped", _truncated_gzip, valid=3, policies={"on_unreadable_file": "quarantine"},
         check=lambda k, s, v, q: s.skipped_files[0]["file"].endswith("cut.csv.gz")
         and "Unexpected end of input stream" in s.skipped_files[0]["reason"] or pytest.fail(str(s.skipped_files))),
    Case("truncated_parquet_fails", _truncated_parquet, fmt="parquet",
         error=lambda k, d: [str(d / "cut.parquet"), "not a Parquet file"]),
    Case("truncated_parquet_skipped", _truncated_parquet, valid=3, fmt="parquet",
         policies={"on_unreadable_file": "quarantine"},
         check=lambda k, s, v, q: [f["file"].rsplit("/", 1)[1] for f in s.skipped_files] == ["cut.parquet"]
         or pytest.fail(str(s.skipped_files))),
    Case("truncated_plain_csv", _truncated_plain_csv, valid=3, reasons={"malformed_line": 1}),
    Case("empty_directory", _empty_directory, error=lambda k, d: [str(d), "no input files"]),
    Case("empty_file_among_others", _empty_file_among_others, valid=5),
    Case("zero_row_file", _zero_row_file, valid=3),
    Case("all_null_optional_column", _all_null_optional, valid=4,
         check=lambda k, s, v, q: s.all_null_columns == [k.optional] or pytest.fail(str(s.all_null_columns))),
    Case("non_finite_labels", _non_finite_labels, valid=2, reasons=lambda k: {f"bad_value:{k.label}": 3}),
    Case("duplicates_kept", _duplicates, valid=6),
    Case("duplicates_quarantined", _duplicates, valid=3, reasons={"duplicate_row": 3},
         policies={"duplicates": "quarantine"}),
    Case("timestamps_out_of_range", _timestamps_out_of_range, valid=1,
         reasons=lambda k: {f"bad_value:{k.time}": 1, "pickup_out_of_range": 2} if k.name == "taxi_fare"
         else {f"bad_value:{k.time}": 1, f"range:{k.time}": 2}),
    # The taxi pipeline keeps a trip whose optional value is bad (null, counted); a tabular schema quarantines
    # every value that does not fit its declared type.
    Case("bad_optional_value", _bad_optional_value, valid=lambda k: 4 if k.name == "taxi_fare" else 3,
         reasons=lambda k: {} if k.name == "taxi_fare" else {f"bad_value:{k.optional}": 1}, check=_optional_check),
    Case("bad_or_missing_required_value", _bad_required_value, valid=2, reasons=_missing_required_reasons),
    Case("header_names_a_column_twice", _duplicated_header,
         error=lambda k, d: [str(d / "a.csv"), k.required, "more than once"]),
]


@pytest.mark.parametrize("kind_name", ["taxi_fare", "tabular"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(spark, kinds, tmp_path, case: Case, kind_name: str):
    kind = kinds[kind_name]
    source = tmp_path / "input"
    rows_written = case.write(kind, source)
    if case.id == "empty_directory":
        source = source / "nothing"
    output = f"{case.id}-{kind_name}"
    if case.error:
        with pytest.raises(PipelineError) as caught:
            kind.ingest(spark, source, output, case.policies, case.fmt)
        message = str(caught.value)
        assert "\n" not in message and "Py4J" not in message and "at org." not in message, message
        for expected in case.error(kind, source):
            assert expected in message, message
        return
    stats, location = kind.ingest(spark, source, output, case.policies, case.fmt)
    assert stats.rows_in == rows_written  # the test's own count of what it wrote
    assert stats.rows_valid == _value(case.valid, kind)
    assert stats.quarantined_by_reason == _value(case.reasons, kind)
    assert stats.rows_valid + stats.rows_quarantined == stats.rows_in
    valid, quarantine = read_valid(spark, location), read_quarantine(spark, location)
    assert (valid.count(), quarantine.count()) == (stats.rows_valid, stats.rows_quarantined)
    assert quarantine.where("reason is null or raw_line is null").count() == 0  # why, and what it was read from
    assert read_stats(spark, location) == stats
    if case.check:
        case.check(kind, stats, valid, quarantine)


# --- what is around the data: configuration, pipeline names, models, splits, state files ---------------

def _bad_override(which):
    def act(spark, kind, tmp_path):
        kind.load([kind.overrides[which]])
    return act


def _unknown_pipeline(spark, kind, tmp_path):
    load_pipeline(f"no_such_{kind.name}", ("local",), [])


def _unknown_model_alias(spark, kind, tmp_path):
    config = kind.load([f"store.root={tmp_path / 'store'}"])
    MlflowClient(Store(config.store).tracking_uri).search_experiments()  # a tracking store, no such model
    resolve_model(config, "no_such_alias")


def _empty_split(spark, kind, tmp_path):
    source = tmp_path / "input"
    write(source / "a.csv", csv_text(kind.header, kind.rows(3)))
    store = tmp_path / "store"
    if kind.name == "taxi_fare":
        config = kind.load([f"store.root={store}", f"ingest.input={source}", "ingest.format=csv"])
        taxi_ingest(spark, str(source), taxi_ingest_location(config), "csv")
    else:
        config = kind.load([f"store.root={store}", f"input.uri={source}"])
        tabular_ingest(spark, config)
    kind.split(spark, config)


def _corrupt_ingest_stats(spark, kind, tmp_path):
    source = tmp_path / "input"
    write(source / "a.csv", csv_text(kind.header, kind.rows(3)))
    stats, location = kind.ingest(spark, source, str(tmp_path / "out"), {}, "csv")
    local_path(location).joinpath(STATS).write_text('{"input": "x", "rows_in": ')  # a disk-full write, say
    read_stats(spark, location)


def _corrupt_manifest(spark, kind, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / MANIFEST).write_text('{"spec": {"rows": "many"')
    read_manifest(spark, to_uri(tmp_path / "raw"))


SETUP_CASES = [  # (id, action, error type, substrings of the message: the key, name or file at fault)
    ("config_unknown_key", _bad_override("unknown"), ConfigError,
     lambda k, t: [k.overrides["unknown"].split("=")[0], "unknown key"]),
    ("config_wrong_type", _bad_override("wrong_type"), ConfigError,
     lambda k, t: [k.overrides["wrong_type"].split("=")[0], "valid"]),
    ("config_missing_value", _bad_override("missing"), ConfigError,
     lambda k, t: [k.overrides["missing"].split("=")[0], "at least 1 character"]),
    ("unknown_pipeline", _unknown_pipeline, ConfigError, lambda k, t: [f"no_such_{k.name}", "known:"]),
    ("unknown_model_alias", _unknown_model_alias, ConfigError, lambda k, t: ["no_such_alias", "registered model"]),
    ("empty_split", _empty_split, DataError, lambda k, t: ["split is empty", "split.test_fraction"]),
    ("corrupt_ingest_statistics", _corrupt_ingest_stats, DataError, lambda k, t: [STATS, "rerun the ingest"]),
    ("corrupt_generator_manifest", _corrupt_manifest, DataError, lambda k, t: [MANIFEST, "not a generator manifest"]),
]


@pytest.mark.parametrize("kind_name", ["taxi_fare", "tabular"])
@pytest.mark.parametrize("case_id,act,error,expected", SETUP_CASES, ids=[c[0] for c in SETUP_CASES])
def test_bad_setup(spark, kinds, tmp_path, case_id, act, error, expected, kind_name):
    kind = kinds[kind_name]
    with pytest.raises(error) as caught:
        act(spark, kind, tmp_path)
    message = str(caught.value)
    assert "Traceback" not in message and "Py4J" not in message and "at org." not in message, message
    for text in expected(kind, tmp_path):
        assert text in message, message


def test_the_ingest_job_prints_one_line_and_no_stack_trace(kinds, tmp_path):
    """What a user sees for an unreadable file: exit code 3 (data), one line naming the file and the reason,
    none of Spark's task stack traces."""
    kind = kinds["taxi_fare"]
    write(tmp_path / "input" / "good.csv.gz", csv_text(kind.header, kind.rows(3)))
    (tmp_path / "input" / "cut.csv.gz").write_bytes(truncated_gzip(csv_text(kind.header, kind.rows(4000))))
    result = subprocess.run([sys.executable, "-m", "jobs.ingest", "taxi_fare", f"store.root={tmp_path / 'store'}",
                             f"ingest.input={tmp_path / 'input'}", "ingest.format=csv", "run_date=2026-01-15",
                             "spark.master=local[1]"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cut.csv.gz: not readable (Unexpected end of input stream)" in errors[0], errors
    assert not [line for line in result.stderr.splitlines() if line.startswith(("\tat ", "Traceback"))], \
        result.stderr[-3000:]
