"""Data that clearly does not fit its declaration fails at ingest, in the user's terms: the share of each leading
reason, values as read, and the key to check; the quarantine and statistics stay committed (nothing lost)."""
import json
import re
from pathlib import Path

import pytest

from pipelines.tabular.ingest import ingest_location
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_stats
from spark_ml_pipeline.runtime.cli import run_stage
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ExitCode

RUN_DATE = "2026-02-01"
FAST = ["spark.master=local[2]", f"run_date={RUN_DATE}", "report.enabled=false", "model.num_workers=1",
        "model.n_estimators=10", "model.max_depth=3", "model.early_stopping_rounds=null"]


def run(tmp_path: Path, conf_dir_with, name: str, pipeline: dict, *overrides: str) -> int:
    conf_dir = conf_dir_with(tmp_path, name, pipeline)
    return run_stage("run", "run", argv=[name, f"store.root={tmp_path / 'store'}", *FAST, *overrides,
                                          "--conf-dir", str(conf_dir)], report=lambda d, r, c: d.summary(r, c))


def ingested(tmp_path: Path, name: str) -> str:
    config = load_pipeline(name, ["local"], [f"store.root={tmp_path / 'store'}", *FAST], tmp_path / "conf")[0]
    return ingest_location(config)


def test_dates_in_another_format_fail_at_ingest_naming_column_values_and_key(spark, tmp_path, conf_dir_with, days,
                                                                             capsys):
    data = tmp_path / "data" / "days.csv"
    data.parent.mkdir(parents=True)
    data.write_text("day,x,y\n" + "\n".join(days.rows(60, "/")) + "\n")
    assert run(tmp_path, conf_dir_with, "slashed", days.conf(data)) == ExitCode.DATA
    err = capsys.readouterr().err
    reason_line = next(line for line in err.splitlines() if "bad_value:day" in line)
    assert "100%" in reason_line and "'2012/01/01'" in reason_line and "schema.day" in reason_line
    assert "max_quarantine_fraction" in err and "fraction" not in err.replace("max_quarantine_fraction", "")
    assert "Traceback" not in err and "split" not in err

    location = ingested(tmp_path, "slashed")  # nothing lost: both sets and the statistics are committed
    stats = read_stats(spark, location)
    assert (stats.rows_in, stats.rows_valid, stats.quarantined_by_reason) == (60, 0, {"bad_value:day": 60})
    assert read_quarantine(spark, location).count() == 60


def test_a_json_array_fails_at_ingest_saying_only_json_lines_are_read(spark, tmp_path, conf_dir_with, days,
                                                                      capsys):
    data = tmp_path / "data" / "days.json"
    data.parent.mkdir(parents=True)
    records = [dict(zip(("day", "x", "y"), line.split(","))) for line in days.rows(40, "-")]
    data.write_text(json.dumps(records, indent=2))  # one array, pretty-printed: how most tools export JSON
    assert run(tmp_path, conf_dir_with, "array", days.conf(data, "json")) == ExitCode.DATA
    err = capsys.readouterr().err
    reason_line = next(line for line in err.splitlines() if "malformed_line" in line)
    assert "100%" in reason_line and re.search(r"— '", reason_line) and "JSON lines" in reason_line
    assert "split" not in err


def test_the_check_turned_off_lets_the_later_error_cite_the_ingest_figures(spark, tmp_path, conf_dir_with, days,
                                                                           capsys):
    data = tmp_path / "data" / "days.csv"
    data.parent.mkdir(parents=True)
    data.write_text("day,x,y\n" + "\n".join(days.rows(60, "/")) + "\n")
    code = run(tmp_path, conf_dir_with, "unchecked", days.conf(data), "ingest.max_quarantine_fraction=1")
    assert code == ExitCode.DATA
    err = capsys.readouterr().err
    assert "split.time_column" in err and "ingest read 60 rows, quarantined 60 (bad_value:day 60), left 0 valid" in err


@pytest.mark.parametrize("share, fails", [(0.2, False), (0.6, True)])
def test_below_the_threshold_the_run_trains(spark, tmp_path, conf_dir_with, days, capsys, share, fails):
    data = tmp_path / "data" / "days.csv"
    data.parent.mkdir(parents=True)
    bad = int(100 * share)
    data.write_text("day,x,y\n" + "\n".join(days.rows(bad, "/") + days.rows(100 - bad, "-")) + "\n")
    code = run(tmp_path, conf_dir_with, "mixed", days.conf(data))
    out = capsys.readouterr()
    assert code == (ExitCode.DATA if fails else 0), out.err
    if not fails:
        assert f"quarantined {bad}" in out.out
