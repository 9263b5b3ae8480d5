"""``jobs.ingest <name> --check``: the first rows of the input, read and tagged as the ingest reads and tags them;
the quarantine by reason with values as read and the key to set; exit 3 when the ingest would fail, 0 when it would
commit; and nothing written in the store."""
import json
import zipfile
from pathlib import Path

from jobs.ingest import main
from pipelines.tabular.ingest import ingest
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ExitCode

CHECK = ["--check", "spark.master=local[2]", "run_date=2026-02-01"]


def check(tmp_path: Path, conf_dir_with, name: str, pipeline: dict, *args: str) -> int:
    conf_dir = conf_dir_with(tmp_path / name, name, pipeline)
    return main([name, *CHECK, f"store.root={tmp_path / 'store'}", *args, "--conf-dir", str(conf_dir)])


def reason_line(out: str, reason: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(reason))


def test_dates_without_their_format_fail_the_check_naming_values_and_key_and_nothing_is_written(
        spark, tmp_path, conf_dir_with, days, capsys):
    data = tmp_path / "data" / "days.csv"
    data.parent.mkdir(parents=True)
    data.write_text("day,x,y\n" + "\n".join(days.rows(60, "/")) + "\n")

    assert check(tmp_path, conf_dir_with, "slashed", days.conf(data)) == ExitCode.DATA
    out, err = capsys.readouterr()
    assert "60 rows read (the whole input), 0 valid, 60 quarantined (100.0%)" in out
    line = reason_line(out, "bad_value:day")
    assert " 60 100.0% — '2012/01/01', '2012/01/02', '2012/01/03'; " in line and "schema.day.format" in line
    assert err.count("\n") == 1 and "ingest.max_quarantine_fraction (0.5)" in err and "would fail" in err

    schema = {"day": {"type": "date", "format": "yyyy/MM/dd"}, "x": "double", "y": "double"}
    assert check(tmp_path, conf_dir_with, "formatted", days.conf(data, schema=schema)) == ExitCode.OK
    out = capsys.readouterr().out
    assert "60 rows read (the whole input), 60 valid, 0 quarantined" in out and "the ingest would commit" in out
    assert check(tmp_path, conf_dir_with, "sampled", days.conf(data, schema=schema), "--check-rows", "25") == 0
    assert "25 rows read (the first 25 rows of the input: --check-rows)" in capsys.readouterr().out

    assert not (tmp_path / "store").exists()  # no ingest output, no lock, no tracking database


def test_a_json_array_read_as_json_lines_names_malformed_line_and_input_multiline(spark, tmp_path, conf_dir_with,
                                                                                   days, capsys):
    data = tmp_path / "data" / "days.json"
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps([dict(zip(("day", "x", "y"), line.split(","))) for line in days.rows(40, "-")],
                               indent=2))

    assert check(tmp_path, conf_dir_with, "array", days.conf(data, "json")) == ExitCode.DATA
    line = reason_line(capsys.readouterr().out, "malformed_line")
    assert "100.0% — '['," in line and "input.multiline: true" in line
    assert not (tmp_path / "store").exists()


def test_an_archive_is_checked_from_a_temporary_copy_and_the_ingest_still_extracts_it_once(spark, tmp_path,
                                                                                          conf_dir_with, days, capsys):
    archive = tmp_path / "data" / "days.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("days.csv", "day,x,y\n" + "\n".join(days.rows(30, "-")) + "\n")
    pipeline = days.conf(archive)

    assert check(tmp_path, conf_dir_with, "zipped", pipeline) == ExitCode.OK
    assert f"input.uri {archive}: 30 rows read" in capsys.readouterr().out  # named as the conf names it
    assert not (tmp_path / "store").exists()

    conf_dir = tmp_path / "zipped" / "conf"
    config = load_pipeline("zipped", ["local"], [f"store.root={tmp_path / 'store'}"], conf_dir)[0]
    assert ingest(spark, config).rows_valid == 30
    extracted = list((tmp_path / "store" / "data" / "zipped" / "extracted").glob("*/days.csv"))
    assert len(extracted) == 1
    assert main(["zipped", *CHECK, f"store.root={tmp_path / 'store'}", "--conf-dir", str(conf_dir)]) == 0
    assert f"input.uri file://{extracted[0].parent}: 30 rows read" in capsys.readouterr().out  # the store's copy
