"""Optuna's private API, exercised for real through the one adapter on real studies (in memory, a journal file,
SQLite and the suite's PostgreSQL): an Optuna upgrade that moves or changes one of them fails here with a message
naming the Optuna version and the attribute. No other module of the project may name a private attribute."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from spark_ml_pipeline.studies.heartbeat import Heartbeat, fail_stale
from spark_ml_pipeline.studies.optuna_internals import (OptunaInternalsChanged, default_study_name_prefix,
                                                         running_trial_ids_without_heartbeat, storage_of,
                                                         study_id_of, trial_id_of, with_study_id, with_trial_id)
from spark_ml_pipeline.studies.storage import HeartbeatRDBStorage, open_storage_at

ROOT = Path(__file__).resolve().parents[3]
ADAPTER = ROOT / "spark_ml_pipeline" / "studies" / "optuna_internals.py"
# A private Optuna name: a private module path, the private attributes the adapter reaches, its RDB hooks.
PRIVATE = re.compile(r"optuna(\.\w+)*\._\w+|\._(storage|trial_id|study_id)\b(?!\s*\()|_get_stale_trial_ids"
                     r"|_datetime_start_utc")
STORAGES = ["in-memory", "journal", "sqlite", "postgresql"]


def broken(what: str) -> str:
    return (f"optuna {optuna.__version__}: {what} no longer behaves as "
            "spark_ml_pipeline/studies/optuna_internals.py relies on; update the adapter for this Optuna version")


@pytest.fixture
def location(request, tmp_path):
    """Where a study lives, one per kind of storage (None: in memory)."""
    kind = request.param
    if kind == "in-memory":
        return None
    if kind == "journal":
        return str(tmp_path / "study.journal")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("store_server").storage  # the suite's PostgreSQL


def new_study(location: str | None, name: str) -> optuna.Study:
    opened = optuna.storages.InMemoryStorage() if location is None else open_storage_at(location)
    return optuna.create_study(study_name=name, storage=opened)


@pytest.mark.parametrize("location", STORAGES, indirect=True)
def test_study_storage_and_trial_ids(location, tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = new_study(location, f"ids-{tmp_path.name}")
    trial = study.ask()
    trial.suggest_int("x", 1, 9)
    storage = storage_of(study)
    assert isinstance(storage, BaseStorage), broken("Study._storage")
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = trial_id_of(trial)
    assert trial_id == storage.get_trial_id_from_study_id_trial_number(study_id, trial.number), \
        broken("Trial._trial_id")
    storage.set_trial_user_attr(trial_id, "orphaned", True)  # what the search does with a crashed trial
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    frozen = storage.get_trial(trial_id)
    assert isinstance(frozen, FrozenTrial) and frozen.user_attrs == {"orphaned": True}
    assert frozen.state == TrialState.FAIL and trial_id_of(frozen) == trial_id, broken("FrozenTrial._trial_id")
    renumbered = with_trial_id(frozen, trial_id + 1000)
    assert (trial_id_of(renumbered), trial_id_of(frozen)) == (trial_id + 1000, trial_id), \
        broken("FrozenTrial._trial_id (set on a copy)")
    assert renumbered.number == frozen.number and renumbered.params == frozen.params
    [summary] = [s for s in storage.get_all_studies() if s.study_name == study.study_name]
    assert study_id_of(summary) == study_id, broken("FrozenStudy._study_id")
    moved = with_study_id(summary, study_id + 1000)
    assert (study_id_of(moved), study_id_of(summary), moved.study_name) == (study_id + 1000, study_id,
                                                                            study.study_name)


@pytest.mark.parametrize("location", STORAGES, indirect=True)
def test_unnamed_studies_are_named_with_optunas_prefix(location):
    prefix = default_study_name_prefix()
    unnamed = optuna.create_study(storage=optuna.storages.InMemoryStorage() if location is None
                                  else open_storage_at(location))
    assert isinstance(prefix, str) and prefix and unnamed.study_name.startswith(prefix), \
        broken("optuna.storages._base.DEFAULT_STUDY_NAME_PREFIX")


@pytest.mark.parametrize("location", ["sqlite", "postgresql"], indirect=True)
def test_a_running_trial_without_a_heartbeat_is_stale_through_the_rdb_hook(location, tmp_path):
    """The schema query (``optuna.storages._rdb.models``) and the hook ``fail_stale_trials`` asks
    (``RDBStorage._get_stale_trial_ids``), on a real RDB study."""
    storage = open_storage_at(location, heartbeat_seconds=1)
    assert isinstance(storage, HeartbeatRDBStorage)
    study = optuna.create_study(study_name=f"stale-{tmp_path.name}", storage=storage)
    silent, beating = study.ask(), study.ask()
    heartbeat = Heartbeat(study, beating, 1).start()
    study_id = storage.get_study_id_from_name(study.study_name)
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=1)
    assert running_trial_ids_without_heartbeat(storage, study_id, later) == [trial_id_of(silent)], \
        broken("optuna.storages._rdb.models.TrialModel")
    try:
        time.sleep(3 * 1 + 0.5)  # the grace period: 3 heartbeat intervals
        fail_stale(study)
    finally:
        heartbeat.stop()
    states = {t.number: t.state for t in study.get_trials()}
    assert states[silent.number] == TrialState.FAIL, broken("RDBStorage._get_stale_trial_ids (asked by "
                                                            "optuna.storages.fail_stale_trials)")
    assert states[beating.number] == TrialState.RUNNING


def test_a_missing_private_attribute_names_the_optuna_version_and_the_attribute():
    with pytest.raises(OptunaInternalsChanged, match=rf"^optuna {re.escape(optuna.__version__)}: "
                                                     r"object\._storage is gone or changed \(AttributeError"):
        storage_of(object())


def test_no_other_module_names_optunas_private_api():
    sources = [p for folder in ("spark_ml_pipeline", "pipelines", "jobs", "features")
               for p in sorted((ROOT / folder).rglob("*.py")) if p != ADAPTER]
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in sources
             for n, line in enumerate(p.read_text().splitlines(), start=1)
             if PRIVATE.search(line) and not line.lstrip().startswith("#")]
    assert found == [], "Optuna's private API outside studies/optuna_internals.py:\n" + "\n".join(found)
    assert PRIVATE.search(ADAPTER.read_text())  # the pattern does find what the adapter holds
