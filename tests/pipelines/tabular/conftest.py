"""What the tabular tests share: a conf directory holding one new pipeline file, as a user would write it; a small
data set of days (dates written with any separator) and its pipeline."""
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def make_conf_dir(tmp_path: Path, name: str, pipeline: dict) -> Path:
    """conf/base.yaml and conf/env/ copied, plus the ONE new file conf/pipelines/<name>.yaml."""
    conf = tmp_path / "conf"
    (conf / "pipelines").mkdir(parents=True)
    shutil.copy(ROOT / "conf" / "base.yaml", conf / "base.yaml")
    shutil.copytree(ROOT / "conf" / "env", conf / "env")
    (conf / "pipelines" / f"{name}.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return conf


@pytest.fixture(scope="session")
def conf_dir_with():
    """``conf_dir_with(tmp_path, name, pipeline)`` -> a conf directory for ``--conf-dir`` / ``load_pipeline``."""
    return make_conf_dir


def dated_rows(n: int, separator: str) -> list[str]:
    """``day,x,y`` with the day written ``2012{separator}01{separator}<dd>`` (y = 2x + 1)."""
    return [f"2012{separator}01{separator}{1 + i % 28:02d},{i % 10}.5,{2 * (i % 10) + 2.0}" for i in range(n)]


def days_conf(uri: Path, input_format: str = "csv", **sections) -> dict:
    """The pipeline of the days: ``day`` a date, ``y`` regressed on ``x``, split by day."""
    found = {"kind": "tabular", "input": {"uri": str(uri), "format": input_format},
             "schema": {"day": "date", "x": "double", "y": "double"}, "label": "y", "task": "regression",
             "features": {"numeric": ["x"], "datetime": {"day": ["day_of_week"]}},
             "split": {"time_column": "day", "validation_fraction": 0.1, "test_fraction": 0.2}}
    found.update(sections)
    return found


@pytest.fixture(scope="session")
def days():
    """``days.rows(n, separator)`` (lines of the days' CSV) and ``days.conf(uri, input_format, **sections)``."""
    return SimpleNamespace(rows=dated_rows, conf=days_conf)
