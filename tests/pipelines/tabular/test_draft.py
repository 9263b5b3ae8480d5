"""``python -m jobs.draft``: a conf from a file nobody has described, that runs without edits when a label is given.

The examples' own inputs (penguins, the taxi generator's CSV, real trips) are drafted and run end to end; a file
in other conventions (semicolons, decimal commas, dates by a pattern, coordinates, an id, a column computed from
the label) gets each of them right; an existing conf is never overwritten. Quality against the hand-written
confs on the whole inputs: bench/draft.py (docs/benchmarks.md "Drafted confs").
"""
import math
import random
import re
import shutil

import pytest
import yaml

from jobs import draft as draft_job
from jobs import ingest as ingest_job
from jobs.run_pipeline import report
from spark_ml_pipeline.runtime.cli import run_stage
from tests.pipelines.tabular.conftest import ROOT

RUN_DATE = "--run-date=2026-03-01"


@pytest.fixture
def conf_dir(tmp_path):
    """An empty project: base.yaml and the environments, no pipeline yet."""
    conf = tmp_path / "conf"
    (conf / "pipelines").mkdir(parents=True)
    shutil.copy(ROOT / "conf" / "base.yaml", conf / "base.yaml")
    shutil.copytree(ROOT / "conf" / "env", conf / "env")
    return conf


def drafted(capsys, conf_dir, store, name, uri, *options) -> dict:
    code = draft_job.main([name, uri, *options, f"--conf-dir={conf_dir}", f"store.root={store}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {conf_dir / 'pipelines' / f'{name}.yaml'}" in out
    return yaml.safe_load((conf_dir / "pipelines" / f"{name}.yaml").read_text())


def run(capsys, conf_dir, store, name) -> str:
    code = run_stage("run", "", [name, f"--conf-dir={conf_dir}", f"store.root={store}", RUN_DATE], report=report)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def figure(summary: str, name: str) -> tuple[float, float]:
    """(test figure, its baseline) from a run's summary, e.g. ``test RMSE 2.1 (predicting the mean: 9.8)``."""
    match = re.search(rf"test {name} ([\d.]+) \([^:]+: ([\d.]+)\)", summary)
    assert match, summary
    return float(match.group(1)), float(match.group(2))


def test_a_file_in_other_conventions_is_drafted_with_them_and_runs(spark, tmp_path, conf_dir, capsys):
    """Semicolons, decimal commas, dd.MM.yyyy dates, NA, two coordinate pairs, an id and a column computed from
    the label: formats, a distance, the id and the leak left out, each with its reason; the run learns the trip."""
    rng = random.Random(5)
    lines = ["trip_id\tday\tstart_lat\tstart_lon\tend_lat\tend_lon\triders\tprice\tprice_with_tax"]
    for i in range(600):
        lat, lon = 40.7 + rng.uniform(-0.1, 0.1), -74.0 + rng.uniform(-0.1, 0.1)
        lat2, lon2 = lat + rng.uniform(-0.05, 0.05), lon + rng.uniform(-0.05, 0.05)
        km = 111 * math.hypot(lat2 - lat, (lon2 - lon) * math.cos(math.radians(lat)))
        price = 3 + 2.5 * km + rng.gauss(0, 0.3)
        riders = "NA" if i % 50 == 0 else str(rng.randint(1, 4))
        lines.append("\t".join([f"T{i:05d}", f"{1 + i % 28:02d}.{1 + i % 9:02d}.2024", f"{lat:.5f}", f"{lon:.5f}",
                                f"{lat2:.5f}", f"{lon2:.5f}", riders, f"{price:.2f}".replace(".", ","),
                                f"{price * 1.08:.2f}"]))
    data = tmp_path / "trips.tsv"
    data.write_text("\n".join(lines) + "\n")
    conf = drafted(capsys, conf_dir, tmp_path / "store", "trips", str(data), "--label", "price")

    assert conf["input"]["delimiter"] == "\t" and conf["input"]["null_values"] == ["", "NA"]
    assert conf["schema"]["day"] == {"type": "date", "format": "dd.MM.yyyy"}
    assert conf["schema"]["price"] == {"type": "double", "decimal": ","}
    assert conf["task"] == "regression" and conf["validation"]["required"] == ["price"]
    assert conf["features"]["distances"] == {"start_to_end_km": {
        "from_latitude": "start_lat", "from_longitude": "start_lon", "to_latitude": "end_lat",
        "to_longitude": "end_lon"}}
    assert conf["features"]["datetime"]["day"][:2] == ["month", "day_of_week"]
    features = [*conf["features"]["numeric"], *conf["features"].get("categorical", {})]
    assert "trip_id" not in features and "price_with_tax" not in features
    text = (conf_dir / "pipelines" / "trips.yaml").read_text()
    assert re.search(r"# left out: trip_id: every sampled value differs", text)
    assert re.search(r"# left out: price_with_tax: correlation \+1\.000 with the label", text)
    schema_lines = text.split("schema:\n")[1].split("\nlabel:")[0].splitlines()
    assert len(schema_lines) == 9 and all(" # " in line for line in schema_lines), "each type has its reason"

    assert ingest_job.main(["trips", "--check", f"--conf-dir={conf_dir}", f"store.root={tmp_path / 'store'}"]) == 0
    assert "600 rows read" in capsys.readouterr().out.replace(",", "")
    rmse, mean_rmse = figure(run(capsys, conf_dir, tmp_path / "store", "trips"), "RMSE")
    assert rmse < 0.35 * mean_rmse  # the distance carries the price: far better than the mean


@pytest.mark.parametrize("example", ["penguins", "taxi_generator_csv", "real_trips"])
def test_the_examples_inputs_draft_and_run_without_edits(spark, tmp_path, conf_dir, capsys, legacy_csv, example):
    uri, label, metric = {
        "penguins": ("package:palmerpenguins/data/penguins.csv", "species", "accuracy"),
        "taxi_generator_csv": (legacy_csv[0], "fare_amount", "RMSE"),
        "real_trips": (str(ROOT / "data/real-taxi/tlc-yellow-samples/yellow_tripdata_sample_2018-0*.csv"),
                       "fare_amount", "RMSE"),
    }[example]
    store = tmp_path / "store"
    conf = drafted(capsys, conf_dir, store, example, uri, "--label", label)
    value, baseline = figure(run(capsys, conf_dir, store, example), metric)
    if metric == "accuracy":
        assert conf["task"] == "multiclass" and value >= 0.93 and baseline < 0.5
    else:
        assert value < 0.5 * baseline
        assert "total_amount" not in conf["features"]["numeric"]  # the fare plus extras: known only after it


def test_an_existing_conf_is_never_overwritten_and_a_draft_without_a_label_says_what_to_set(
        spark, tmp_path, conf_dir, capsys):
    existing = conf_dir / "pipelines" / "penguins.yaml"
    existing.write_text("# mine\n")
    code = draft_job.main(["penguins", "package:palmerpenguins/data/penguins.csv", f"--conf-dir={conf_dir}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "exists: a draft never overwrites a conf" in err
    assert existing.read_text() == "# mine\n"

    conf = drafted(capsys, conf_dir, tmp_path / "store", "unlabelled", "package:palmerpenguins/data/penguins.csv")
    assert conf["label"] is None and "species" in conf["features"]["categorical"]
    code = run_stage("run", "", ["unlabelled", f"--conf-dir={conf_dir}", f"store.root={tmp_path / 'store'}"])
    err = capsys.readouterr().err
    assert code == 2 and "label" in err and "Traceback" not in err
