"""Inferring a column's type from its text: the shape suggests candidates, the ingest's own cast confirms one."""
import json

import pytest

from spark_ml_pipeline.ingest.inference import candidates, input_format_of, profile, read_sample
from spark_ml_pipeline.ingest.tables import WrittenAs


def first(name, values):
    found = candidates(name, values)
    return (found[0].sql_type, found[0].written) if found else ("string", WrittenAs())


@pytest.mark.parametrize("name, values, expected", [
    ("n", ["1", "-2", "+30"], ("int", WrittenAs())),
    ("n", ["1", "9999999999"], ("bigint", WrittenAs())),
    ("x", ["1.5", "2", "-3e2", ".5"], ("double", WrittenAs())),
    ("zip", ["02134", "10001"], ("string", WrittenAs())),  # leading zeros: a code, kept as text
    ("flag", ["true", "False"], ("boolean", WrittenAs())),
    ("price", ["1.234,5", "3,25", "12"], ("double", WrittenAs(decimal=",", thousands="."))),
    ("price", ["3,25", "0,5"], ("double", WrittenAs(decimal=","))),
    ("amount", ["1,234.5", "12.0", "1,000,000"], ("double", WrittenAs(thousands=","))),
    ("amount", ["1 234,5", "12", "1 000 000"], ("double", WrittenAs(decimal=",", thousands=" "))),
    ("day", ["2012-01-31", "2012-02-29"], ("date", WrittenAs())),
    ("day", ["2012/01/31", "2012/02/29"], ("date", WrittenAs("yyyy/MM/dd"))),
    ("day", ["31.01.2012", "29.02.2012"], ("date", WrittenAs("dd.MM.yyyy"))),
    ("day", ["31/01/2012", "02/03/2012"], ("date", WrittenAs("dd/MM/yyyy"))),  # 31 first: day first
    ("day", ["01/31/2012", "02/03/2012"], ("date", WrittenAs("MM/dd/yyyy"))),
    ("at", ["2019-01-01 10:00:00", "2019-01-01T10:00"], ("timestamp", WrittenAs())),
    ("at", ["2019-01-01 10:00 Europe/Paris"], ("timestamp", WrittenAs("yyyy-MM-dd HH:mm:ss VV"))),
    ("created_at", ["1546300800", "1546300900"], ("timestamp", WrittenAs("epoch_seconds"))),
    ("count", ["1546300800", "1546300900"], ("int", WrittenAs())),  # not named like a time: a number
    ("name", ["Adelie", "Gentoo"], ("string", WrittenAs())),
])
def test_the_shape_of_the_text_suggests_the_type(name, values, expected):
    assert first(name, values) == expected


@pytest.mark.parametrize("uri, expected", [("a/b.csv", "csv"), ("x.csv.gz", "csv"), ("y.json.bz2", "json"),
                                           ("t.parquet", "parquet"), ("d.orc", "orc"), ("f.csv.zip", "csv"),
                                           ("dir/", None)])
def test_the_format_from_the_name(uri, expected):
    assert input_format_of(uri) == expected


def test_a_csv_in_another_convention_is_read_as_the_ingest_will(spark, tmp_path):
    """Semicolons, decimal commas, dates by a pattern, NA for missing: each column's type is the one the ingest's
    cast reads every sampled value with; a pattern the shape suggests but a value breaks falls back to text."""
    path = tmp_path / "sales.csv"
    path.write_text("day;price;units;zip;note;odd_day;total\n"
                    "2012/01/31;1.234,5;3;02134;NA;2012/01/31;1 234,5\n"
                    "2012/02/29;3,25;NA;10001;fine;2012/02/30;12\n"
                    "2013/12/01;12;7;10001;fine;2012/03/01;1 000 000\n")
    sample = read_sample(spark, str(path), "csv", 100)
    assert (sample.layout.header, sample.layout.delimiter) == (True, ";")
    null_values, profiles = profile(sample)
    assert null_values == ("", "NA")
    found = {p.name: (p.sql_type, p.written.pattern, p.written.decimal) for p in profiles}
    assert found == {"day": ("date", "yyyy/MM/dd", "."), "price": ("double", None, ","), "units": ("int", None, "."),
                     "zip": ("string", None, "."), "note": ("string", None, "."),
                     "odd_day": ("string", None, "."),  # 2012/02/30 is no date: text, not a quarantine
                     "total": ("double", None, ",")}
    price = next(p for p in profiles if p.name == "price")
    assert (price.present, price.minimum, price.maximum) == (3, 3.25, 1234.5)
    total = next(p for p in profiles if p.name == "total")
    assert (total.written.thousands, total.minimum, total.maximum) == (" ", 12, 1_000_000)


def test_a_json_array_is_recognised_and_read_whole(spark, tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"at": "2019-07-01T10:00:00-04:00", "y": 1.5, "kind": "a"},
                                {"at": "2019-01-01T10:00:00+01:00", "y": 2, "kind": "b"}], indent=2))
    sample = read_sample(spark, str(path), "json", 100)
    assert sample.layout.multiline
    _, profiles = profile(sample)
    found = {p.name: p.sql_type for p in profiles}
    assert found == {"at": "timestamp", "kind": "string", "y": "double"}
    at = next(p for p in profiles if p.name == "at")
    assert str(at.minimum) == "2019-01-01 09:00:00"  # the offset applied: UTC wall clock
