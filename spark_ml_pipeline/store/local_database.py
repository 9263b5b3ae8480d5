"""A local store's MLflow database (``<store root>/mlflow.db``, sqlite), created as a copy of an empty one.

MLflow builds a new database by running every schema migration it ever shipped (about 60, through alembic): 2.2 s
of every new store's first run here, and two INFO lines on stderr. The same empty schema is built once per MLflow
version instead, kept beside the environment's other built files (``share/spark-ml-pipeline``), and copied: MLflow
finds its tables at the current version and only adds its ``Default`` experiment (with this store's artifact
root). Where the environment cannot be written, MLflow builds the database itself, as before.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import mlflow
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from spark_ml_pipeline.runtime.class_archive import SHARE_DIR


def template_path() -> Path:
    return SHARE_DIR / f"mlflow-{mlflow.__version__}-empty.db"


def empty_schema() -> Path | None:
    """The empty database of this MLflow version: built on first use (atomically), None when it cannot be."""
    template = template_path()
    if template.is_file():
        return template
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        store = SqlAlchemyStore(f"sqlite:///{partial}", partial.parent.as_uri())
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(partial)) as database, database:
            # MLflow's Default experiment names the artifact root it was built with: each store adds its own.
            database.execute("DELETE FROM experiments")
        partial.replace(template)
    except (OSError, sqlite3.Error):
        partial.unlink(missing_ok=True)
        return None
    return template


def create_if_absent(database: Path) -> None:
    """``database`` as a copy of the empty schema, unless it exists (or the schema cannot be had: MLflow then
    builds it). Hard-linked into place from a private copy, so two processes opening one new store never see a
    half-copied file and never replace each other's."""
    if database.exists():
        return
    template = empty_schema()
    if template is None:
        return
    partial = database.with_name(f".{database.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(template.read_bytes())
        os.link(partial, database)
    except FileExistsError:
        pass  # another process created it first: theirs is the store's
    except OSError:
        pass  # no hard links here: MLflow builds the database itself
    finally:
        partial.unlink(missing_ok=True)
