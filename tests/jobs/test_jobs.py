"""Jobs are thin command lines: --help explains them; configuration errors are one clear line."""
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.ingest import main as ingest_main

ROOT = Path(__file__).resolve().parents[2]
JOBS = ["generate", "ingest", "featurize", "train", "run_pipeline"]


def run_job(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("job", JOBS)
def test_help_explains_the_options(job):
    result = run_job("-m", f"jobs.{job}", "--help")
    assert result.returncode == 0
    assert "taxi_fare" in result.stdout and "key=value" in result.stdout and "--env" in result.stdout


def test_job_runs_as_a_script_too():
    result = run_job(str(ROOT / "jobs" / "train.py"), "--help")
    assert result.returncode == 0 and "XGBoost" in result.stdout


def test_configuration_error_is_one_clear_message_without_traceback():
    result = run_job("-m", "jobs.train", "taxi_fare", "model.max_depth=deep", "model.colour=red")
    assert result.returncode == 2
    assert "key 'model.max_depth' (set in command line)" in result.stderr
    assert "unknown key 'model.colour' (set in command line)" in result.stderr
    assert "Traceback" not in result.stderr


def test_training_settings_that_do_not_fit_the_data_are_one_line_before_any_fit(tmp_path):
    result = run_job("-m", "jobs.run_pipeline", "darcy_surrogate", "training.augment_channels=5",
                     "data.train_limit=20", "data.test_limit=5", "training.epochs=1", f"store.root={tmp_path}")
    assert result.returncode == 2  # a configuration error (docs/scheduling.md: exit codes)
    assert ("error: KerasEstimator: augment_channels=5 exceeds the input's 3 channel(s) (input_shape (16, 16, 3))"
            in result.stderr)
    assert "Traceback" not in result.stderr and (tmp_path / "data" / "darcy_surrogate" / "raw").exists()  # ingested
    assert not (tmp_path / "data" / "darcy_surrogate" / "work").exists()  # nothing trained or written for a fit


def test_missing_input_is_one_clear_message(tmp_path):
    result = run_job("-m", "jobs.ingest", "taxi_fare", f"ingest.input={tmp_path}/none", "ingest.format=csv",
                     f"store.root={tmp_path}/store", "spark.master=local[1]")
    assert result.returncode == 3  # bad data (docs/scheduling.md: exit codes)
    assert f"error: file://{tmp_path}/none: no input files found" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_ingest_check_of_a_shipped_conf_runs_from_the_command_line_and_writes_nothing(tmp_path):
    result = run_job("-m", "jobs.ingest", "penguins_species", "--check", f"store.root={tmp_path}/store",
                     "spark.master=local[1]")
    assert result.returncode == 0, result.stderr
    assert "344 rows read (the whole input)" in result.stdout and "the ingest would commit" in result.stdout
    assert not (tmp_path / "store").exists()


def test_a_pipeline_without_an_ingest_check_says_so_in_one_line(capsys):
    assert ingest_main(["fashion_mnist", "--check"]) == 2  # before Spark starts
    assert capsys.readouterr().err == "error: pipeline 'fashion_mnist' (kind fashion_mnist) has no ingest check\n"
