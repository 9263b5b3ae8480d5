"""The formats users' files come in: dates by a pattern, offsets and zone names, epoch numbers, decimal commas,
JSON arrays and multi-line objects, ORC, compressed text. Each is ingested with every row accounted for."""
import bz2
import gzip
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from pipelines.tabular.ingest import ingest, ingest_location
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_valid
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError

RUN_DATE = "2026-02-01"


def load(tmp_path: Path, conf_dir_with, schema: dict, input_section: dict, name: str = "formats"):
    pipeline = {"kind": "tabular", "input": input_section, "schema": schema, "label": "y", "task": "regression",
                "features": {"numeric": ["x"]}}
    conf_dir = conf_dir_with(tmp_path / name, name, pipeline)
    return load_pipeline(name, ["local"], [f"store.root={tmp_path / 'store'}", f"run_date={RUN_DATE}"], conf_dir)[0]


def ingested(spark, config) -> tuple[dict, list, list]:
    """(stats as a dict, valid rows, quarantined reasons) after ingest; rows in = valid + quarantined checked."""
    stats = ingest(spark, config)
    assert stats.rows_in == stats.rows_valid + stats.rows_quarantined
    location = ingest_location(config)
    valid = sorted(read_valid(spark, location).collect(), key=lambda row: row["y"])
    reasons = sorted(row["reason"] for row in read_quarantine(spark, location).collect())
    return stats, valid, reasons


def write(path: Path, text: str, opener=open) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wt") as out:
        out.write(text)
    return path


def test_dates_written_by_a_pattern(spark, tmp_path, conf_dir_with):
    data = write(tmp_path / "d.csv", "day,x,y\n2012/01/31,1.5,1\n2012/02/29,2.5,2\n31.01.2012,3.5,3\n")
    config = load(tmp_path, conf_dir_with, {"day": {"type": "date", "format": "yyyy/MM/dd"}, "x": "double",
                                            "y": "double"}, {"uri": str(data)})
    stats, valid, reasons = ingested(spark, config)
    assert [row["day"] for row in valid] == [date(2012, 1, 31), date(2012, 2, 29)]
    assert reasons == ["bad_value:day"]  # another pattern: quarantined, not guessed


def test_timestamps_with_an_offset_or_a_zone_name_become_utc_wall_clock(spark, tmp_path, conf_dir_with):
    data = write(tmp_path / "t.csv", "at,x,y\n2019-01-01T10:00:00+01:00,1,1\n2019-07-01T10:00:00-04:00,2,2\n"
                                     "2019-07-01 10:00,3,3\n")
    config = load(tmp_path, conf_dir_with, {"at": {"type": "timestamp_ntz", "format": "yyyy-MM-dd'T'HH:mm:ssXXX"},
                                            "x": "double", "y": "double"}, {"uri": str(data)})
    _, valid, reasons = ingested(spark, config)
    assert [row["at"] for row in valid] == [datetime(2019, 1, 1, 9), datetime(2019, 7, 1, 14)]
    assert reasons == ["bad_value:at"]

    zoned = write(tmp_path / "z.csv", "at,x,y\n2019-07-01 10:00 America/New_York,1,1\n"
                                      "2019-01-01 10:00 Europe/Paris,2,2\n")
    config = load(tmp_path, conf_dir_with, {"at": {"type": "timestamp_ntz", "format": "yyyy-MM-dd HH:mm VV"},
                                            "x": "double", "y": "double"}, {"uri": str(zoned)}, name="zoned")
    _, valid, reasons = ingested(spark, config)
    assert [row["at"] for row in valid] == [datetime(2019, 7, 1, 14), datetime(2019, 1, 1, 9)]  # the jobs' session: UTC
    assert reasons == []


@pytest.mark.parametrize("unit, values", [("epoch_seconds", ["1546300800", "1546300800.5"]),
                                          ("epoch_millis", ["1546300800000", "1546300800500"])])
def test_epoch_numbers(spark, tmp_path, conf_dir_with, unit, values):
    data = write(tmp_path / "e.csv", f"at,x,y\n{values[0]},1,1\n{values[1]},2,2\nyesterday,3,3\n")
    config = load(tmp_path, conf_dir_with, {"at": {"type": "timestamp_ntz", "format": unit}, "x": "double",
                                            "y": "double"}, {"uri": str(data)})
    _, valid, reasons = ingested(spark, config)
    assert [row["at"] for row in valid] == [datetime(2019, 1, 1), datetime(2019, 1, 1, 0, 0, 0, 500_000)]
    assert reasons == ["bad_value:at"]


def test_numbers_with_a_decimal_comma_and_thousands_separators(spark, tmp_path, conf_dir_with):
    data = write(tmp_path / "n.csv", "x;y\n1.234,5;1\n0,25;2\n1.234.567,89;3\n")
    config = load(tmp_path, conf_dir_with, {"x": {"type": "double", "decimal": ",", "thousands": "."},
                                            "y": "double"}, {"uri": str(data), "delimiter": ";"})
    _, valid, reasons = ingested(spark, config)
    assert [row["x"] for row in valid] == [1234.5, 0.25, 1234567.89]
    assert reasons == []


def test_a_json_array_and_multi_line_objects(spark, tmp_path, conf_dir_with):
    records = [{"x": i + 0.5, "y": i} for i in range(5)]
    write(tmp_path / "json" / "array.json", json.dumps(records[:3], indent=2))
    write(tmp_path / "json" / "object.json", json.dumps(records[3], indent=2))  # one object over several lines
    write(tmp_path / "json" / "broken.json", '{"x": 1,\n  "y": ')
    config = load(tmp_path, conf_dir_with, {"x": "double", "y": "double"},
                  {"uri": str(tmp_path / "json"), "format": "json", "multiline": True})
    stats, valid, reasons = ingested(spark, config)
    assert [row["x"] for row in valid] == [0.5, 1.5, 2.5, 3.5]
    assert reasons == ["malformed_line"] and stats.rows_in == 5


def test_orc_files(spark, tmp_path, conf_dir_with):
    spark.createDataFrame([(1.5, 1.0), (float("nan"), 2.0), (3.5, 3.0)], "x double, y double") \
        .coalesce(1).write.orc(str(tmp_path / "orc"))
    config = load(tmp_path, conf_dir_with, {"x": "double", "y": "double"},
                  {"uri": str(tmp_path / "orc"), "format": "orc"})
    _, valid, reasons = ingested(spark, config)
    assert [row["x"] for row in valid] == [1.5, 3.5] and reasons == ["bad_value:x"]


def test_compressed_csv_and_json(spark, tmp_path, conf_dir_with):
    write(tmp_path / "gz" / "a.csv.gz", "x,y\n1.5,1\n2.5,2\n", gzip.open)
    write(tmp_path / "gz" / "b.csv.bz2", "x,y\n3.5,3\nabc,4\n", bz2.open)
    config = load(tmp_path, conf_dir_with, {"x": "double", "y": "double"}, {"uri": str(tmp_path / "gz")})
    _, valid, reasons = ingested(spark, config)
    assert [row["x"] for row in valid] == [1.5, 2.5, 3.5] and reasons == ["bad_value:x"]

    write(tmp_path / "jgz" / "a.json.gz", '{"x": 1.5, "y": 1}\n{"x": 2.5, "y": 2}\n', gzip.open)
    config = load(tmp_path, conf_dir_with, {"x": "double", "y": "double"},
                  {"uri": str(tmp_path / "jgz"), "format": "json"}, name="jsongz")
    _, valid, _ = ingested(spark, config)
    assert [row["x"] for row in valid] == [1.5, 2.5]


@pytest.mark.parametrize("schema, input_section, message", [
    ({"x": {"type": "double", "format": "yyyy"}, "y": "double"}, {}, r"schema\.x\.format: for date and timestamp"),
    ({"x": "double", "y": {"type": "date", "decimal": ","}}, {}, r"schema\.y: decimal / thousands are for numeric"),
    ({"x": {"format": "yyyy"}, "y": "double"}, {}, r"schema\.x: a column written as a mapping needs its type"),
    ({"x": "double", "y": "double"}, {"multiline": True}, r"input\.multiline: only for JSON"),
])
def test_misplaced_format_keys_are_one_line_naming_the_key(tmp_path, conf_dir_with, schema, input_section, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, conf_dir_with, schema, {"uri": str(tmp_path / "x.csv"), **input_section})
