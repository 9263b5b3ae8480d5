"""A local store's MLflow database starts as a copy of MLflow's empty schema (store/local_database.py): the same
tables, schema version and Default experiment as a database MLflow builds itself, no migrations run, and two
processes opening one new store end with one whole database."""
import sqlite3
import subprocess
import sys

import mlflow
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from spark_ml_pipeline.runtime.config_models import StoreConfig
from spark_ml_pipeline.store.local_database import create_if_absent, empty_schema
from spark_ml_pipeline.store.tracking import Store


def schema_and_rows(path):
    with sqlite3.connect(path) as database:
        tables = sorted(row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        version = database.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = database.execute("SELECT experiment_id, name, artifact_location, lifecycle_stage "
                                       "FROM experiments").fetchall()
    return tables, version, experiments


def test_a_copied_database_is_the_one_mlflow_builds(tmp_path):
    template = empty_schema()
    assert template is not None and template.is_file()
    assert schema_and_rows(template)[2] == []  # no experiment: each store adds its Default with its own root
    built, copied = tmp_path / "built.db", tmp_path / "copied.db"
    create_if_absent(copied)
    for path in (built, copied):
        SqlAlchemyStore(f"sqlite:///{path}", (tmp_path / "artifacts").as_uri()).engine.dispose()
    assert schema_and_rows(copied) == schema_and_rows(built)
    assert schema_and_rows(copied)[2] == [(0, "Default", (tmp_path / "artifacts" / "0").as_uri(), "active")]


def test_a_new_store_records_runs_without_running_migrations(tmp_path):
    script = tmp_path / "first_run.py"
    script.write_text(
        "import sys, mlflow\n"
        "from spark_ml_pipeline.runtime.config_models import StoreConfig\n"
        "from spark_ml_pipeline.store.tracking import Store\n"
        "with Store(StoreConfig(root=sys.argv[1])).run('first', 'one') as run:\n"
        "    mlflow.log_metric('x', 1.0)\n"
        "print(run.info.run_id)\n")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "store")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Creating initial MLflow database tables" not in done.stderr  # MLflow's migrations did not run
    store = Store(StoreConfig(root=str(tmp_path / "store")))
    run = mlflow.MlflowClient(store.tracking_uri).get_run(done.stdout.split()[-1])
    assert run.data.metrics == {"x": 1.0} and run.info.status == "FINISHED"


def test_two_processes_creating_one_store_leave_one_whole_database(tmp_path):
    database = tmp_path / "mlflow.db"
    code = ("import sys; from pathlib import Path; from spark_ml_pipeline.store.local_database import "
            "create_if_absent; [create_if_absent(Path(sys.argv[1])) for _ in range(50)]")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(database)]) for _ in range(2)]
    assert [racer.wait(timeout=120) for racer in racers] == [0, 0]
    assert schema_and_rows(database) == schema_and_rows(empty_schema())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # no partial copy left behind
