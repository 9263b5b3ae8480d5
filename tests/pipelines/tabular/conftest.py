"""What the tabular tests share: a conf directory holding one new pipeline file, as a user would write it."""
import shutil
from pathlib import Path

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
