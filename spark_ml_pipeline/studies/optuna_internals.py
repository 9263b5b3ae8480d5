"""Every use of Optuna's private API, behind one adapter: nothing else in the project names a private attribute.

Optuna has no public way to do what the search and the dashboard need here:

* ``Study._storage`` and ``Trial._trial_id`` / ``FrozenTrial._trial_id``: an ask/tell loop records a trial's
  heartbeat, fails a trial a crash left running and reads a told trial back through the study's storage, which
  addresses trials by storage id (``Study.optimize`` does the same internally);
* ``FrozenStudy`` (``optuna.study._frozen``) with its ``_study_id``, and ``FrozenTrial._trial_id`` set on a copy:
  the dashboard's one storage over many journal files gives their studies and trials ids of its own;
* ``DEFAULT_STUDY_NAME_PREFIX`` (``optuna.storages._base``): a study created unnamed is named as Optuna names it;
* the RDB schema (``optuna.storages._rdb.models``) and ``RDBStorage._get_stale_trial_ids``, which
  ``optuna.storages.fail_stale_trials`` asks: trials that never recorded a heartbeat count as stale too.

Private modules are imported when first used, not at the top: an Optuna that moved one then fails where it is
needed with :class:`OptunaInternalsChanged` (naming the version and the attribute), not every import of the
project. ``tests/spark_ml_pipeline/studies/test_optuna_internals.py`` exercises each on real studies.
"""
from __future__ import annotations

import copy
import importlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial, TrialState

if TYPE_CHECKING:  # annotations only
    from optuna.study._frozen import FrozenStudy

STALE_TRIALS_HOOK = "_get_stale_trial_ids"


class OptunaInternalsChanged(RuntimeError):
    """The installed Optuna lacks (or changed) a private attribute this project relies on."""

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        because = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        super().__init__(f"optuna {optuna.__version__}: {what} is gone or changed{because}; "
                         f"spark_ml_pipeline/studies/optuna_internals.py must be updated for this Optuna version")


def _module_attribute(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise OptunaInternalsChanged(f"{module}.{name}", exc) from None


def _attribute(owner: object, name: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError as exc:
        raise OptunaInternalsChanged(f"{type(owner).__name__}.{name}", exc) from None


def _with_attribute(owner: object, name: str, value: Any):
    """A shallow copy of ``owner`` with ``name`` replaced (refused when absent: it would only add a new one)."""
    _attribute(owner, name)
    changed = copy.copy(owner)
    setattr(changed, name, value)
    return changed


# --- studies and trials -----------------------------------------------------------------------------------

def storage_of(study: optuna.Study) -> BaseStorage:
    return _attribute(study, "_storage")


def trial_id_of(trial: Trial | FrozenTrial) -> int:
    """The trial's id in its storage (not its number in the study)."""
    return _attribute(trial, "_trial_id")


def study_id_of(study: FrozenStudy) -> int:
    return _attribute(study, "_study_id")


def with_trial_id(trial: FrozenTrial, trial_id: int) -> FrozenTrial:
    return _with_attribute(trial, "_trial_id", trial_id)


def with_study_id(study: FrozenStudy, study_id: int) -> FrozenStudy:
    return _with_attribute(study, "_study_id", study_id)


def default_study_name_prefix() -> str:
    return _module_attribute("optuna.storages._base", "DEFAULT_STUDY_NAME_PREFIX")


# --- the RDB storage's stale trials ---------------------------------------------------------------------

class RDBStorageWithStaleHook(optuna.storages.RDBStorage):
    """An RDB storage whose stale trials (those ``optuna.storages.fail_stale_trials`` fails) a subclass may add
    to by overriding :meth:`more_stale_trial_ids`."""

    def __init__(self, *args, **kwargs) -> None:
        if not callable(getattr(optuna.storages.RDBStorage, STALE_TRIALS_HOOK, None)):
            raise OptunaInternalsChanged(f"RDBStorage.{STALE_TRIALS_HOOK}")
        super().__init__(*args, **kwargs)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [trial_id for trial_id in self.more_stale_trial_ids(study_id) if trial_id not in stale]

    def more_stale_trial_ids(self, study_id: int) -> list[int]:
        return []


def running_trial_ids_without_heartbeat(storage: optuna.storages.RDBStorage, study_id: int,
                                        started_before: datetime) -> list[int]:
    """RUNNING trials of the study that started before ``started_before`` (naive UTC, as Optuna stores it) and
    never recorded a heartbeat."""
    trials = _module_attribute("optuna.storages._rdb.models", "TrialModel")
    try:
        session = storage.scoped_session()
        try:
            rows = (session.query(trials.trial_id)
                    .filter(trials.study_id == study_id,
                            trials.state == TrialState.RUNNING,
                            trials._datetime_start_utc < started_before,
                            ~trials.heartbeats.any())
                    .all())
        finally:
            session.close()
    except AttributeError as exc:
        raise OptunaInternalsChanged("optuna.storages._rdb.models.TrialModel (trial_id, study_id, state, "
                                     "_datetime_start_utc, heartbeats) or RDBStorage.scoped_session", exc) from None
    return [trial_id for (trial_id,) in rows]
