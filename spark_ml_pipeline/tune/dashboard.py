"""``make dashboard``: optuna-dashboard, live, on the studies of a pipeline's store (127.0.0.1 only).

    python -m spark_ml_pipeline.tune.dashboard [PIPELINE] [key=value ...] [--port 8080]

The storage comes from the pipeline's configuration, as the search resolves it (:mod:`spark_ml_pipeline.tune.search`):

* ``tune.storage`` an RDB URL (``postgresql://...``): that database, every study in it;
* ``tune.storage`` a journal file: that file;
* otherwise the store's study directory, ``<store root>/optuna/``, where every search keeps its study in a
  journal file of its own (``<pipeline>-<hash>.journal``). optuna-dashboard serves one storage, so
  :class:`JournalDirectoryStorage` presents every journal of the directory as one: the studies of all searches
  of the store, a search started while the dashboard runs included. No journal yet (a store that has only seen
  ``make run``) is an empty list, not an error; nothing is created until a study is.
"""
from __future__ import annotations

import re
import sys
import threading
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Container, Sequence
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import wsgi

from spark_ml_pipeline.runtime import live_view
from spark_ml_pipeline.runtime.cli import fail
from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.runtime.database_urls import is_rdb_url, redacted
from spark_ml_pipeline.studies.optuna_internals import (default_study_name_prefix, study_id_of, trial_id_of,
                                                         with_study_id, with_trial_id)
from spark_ml_pipeline.studies.storage import open_storage_at
from spark_ml_pipeline.tune.search import optuna_dir, storage_location

if TYPE_CHECKING:  # annotations only (Optuna exports no FrozenStudy; the adapter reaches it)
    from spark_ml_pipeline.studies.optuna_internals import FrozenStudy

DEFAULT_PORT = 8080
JOURNAL_SUFFIX = ".journal"


class JournalDirectoryStorage(BaseStorage):
    """Every study of every ``*.journal`` file in ``directory`` as one Optuna storage.

    Each file is a :class:`~optuna.storages.JournalStorage` of its own, whose study and trial ids start at 0:
    this storage gives each (file, id) pair an id of its own, in the order it first sees them, and passes every
    call on to the file that holds the study or trial. The directory is listed again whenever the studies are, so
    journals created later appear. A study created here (optuna-dashboard can) gets a journal file of its own,
    ``<study name>.journal``, as the search would lay it out."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self._journals: dict[str, JournalStorage] = {}
        self._study_ids: dict[tuple[str, int], int] = {}
        self._studies: dict[int, tuple[str, int]] = {}
        self._trial_ids: dict[tuple[str, int], int] = {}
        self._trials: dict[int, tuple[str, int]] = {}

    # --- the journals and the id maps ---------------------------------------------------------------------

    def journal_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob(f"*{JOURNAL_SUFFIX}") if p.is_file())

    def _refresh(self) -> dict[str, JournalStorage]:
        with self._lock:
            for path in self.journal_files():
                if path.name not in self._journals:
                    self._journals[path.name] = JournalStorage(JournalFileBackend(str(path)))
            return dict(self._journals)

    @staticmethod
    def _global(key: tuple[str, int], ids: dict, keys: dict) -> int:
        if key not in ids:
            ids[key] = len(ids)
            keys[ids[key]] = key
        return ids[key]

    def _study_id(self, name: str, local: int) -> int:
        with self._lock:
            return self._global((name, local), self._study_ids, self._studies)

    def _trial_id(self, name: str, local: int) -> int:
        with self._lock:
            return self._global((name, local), self._trial_ids, self._trials)

    def _study(self, study_id: int) -> tuple[JournalStorage, int]:
        with self._lock:
            if study_id not in self._studies:
                self.get_all_studies()
            if study_id not in self._studies:
                raise KeyError(f"No study with study_id {study_id} exists.")
            name, local = self._studies[study_id]
            return self._journals[name], local

    def _trial(self, trial_id: int) -> tuple[JournalStorage, int, str]:
        with self._lock:
            if trial_id not in self._trials:
                raise KeyError(f"No trial with trial_id {trial_id} exists.")
            name, local = self._trials[trial_id]
            return self._journals[name], local, name

    def _frozen_study(self, name: str, study: FrozenStudy) -> FrozenStudy:
        return with_study_id(study, self._study_id(name, study_id_of(study)))

    def _frozen_trial(self, name: str, trial: FrozenTrial) -> FrozenTrial:
        return with_trial_id(trial, self._trial_id(name, trial_id_of(trial)))

    # --- studies ------------------------------------------------------------------------------------------

    def get_all_studies(self) -> list[FrozenStudy]:
        studies = []
        for name, journal in self._refresh().items():
            studies.extend(self._frozen_study(name, study) for study in journal.get_all_studies())
        return studies

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        study_name = study_name or f"{default_study_name_prefix()}{uuid.uuid4()}"  # as Optuna's own storages
        with self._lock:
            try:
                self.get_study_id_from_name(study_name)
            except KeyError:
                pass
            else:
                raise optuna.exceptions.DuplicatedStudyError(f"Another study with name '{study_name}' already exists.")
            self.directory.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", study_name) or "study"
            path, n = self.directory / f"{stem}{JOURNAL_SUFFIX}", 1
            while path.exists():
                n += 1
                path = self.directory / f"{stem}-{n}{JOURNAL_SUFFIX}"
            journal = JournalStorage(JournalFileBackend(str(path)))
            self._journals[path.name] = journal
            return self._study_id(path.name, journal.create_new_study(directions, study_name))

    def delete_study(self, study_id: int) -> None:
        journal, local = self._study(study_id)
        journal.delete_study(local)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        journal, local = self._study(study_id)
        journal.set_study_user_attr(local, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        journal, local = self._study(study_id)
        journal.set_study_system_attr(local, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        for name, journal in self._refresh().items():
            try:
                return self._study_id(name, journal.get_study_id_from_name(study_name))
            except KeyError:
                continue
        raise KeyError(f"No such study {study_name}.")

    def get_study_name_from_id(self, study_id: int) -> str:
        journal, local = self._study(study_id)
        return journal.get_study_name_from_id(local)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        journal, local = self._study(study_id)
        return journal.get_study_directions(local)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        journal, local = self._study(study_id)
        return journal.get_study_user_attrs(local)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        journal, local = self._study(study_id)
        return journal.get_study_system_attrs(local)

    # --- trials -------------------------------------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        journal, local = self._study(study_id)
        name = self._studies[study_id][0]
        return self._trial_id(name, journal.create_new_trial(local, template_trial))

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        journal, local = self._study(study_id)
        name = self._studies[study_id][0]
        return self._trial_id(name, journal.get_trial_id_from_study_id_trial_number(local, trial_number))

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        journal, local, _ = self._trial(trial_id)
        journal.set_trial_param(local, param_name, param_value_internal, distribution)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        journal, local, _ = self._trial(trial_id)
        return journal.set_trial_state_values(local, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        journal, local, _ = self._trial(trial_id)
        journal.set_trial_intermediate_value(local, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        journal, local, _ = self._trial(trial_id)
        journal.set_trial_user_attr(local, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        journal, local, _ = self._trial(trial_id)
        journal.set_trial_system_attr(local, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        journal, local, name = self._trial(trial_id)
        return self._frozen_trial(name, journal.get_trial(local))

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        journal, local = self._study(study_id)
        name = self._studies[study_id][0]
        return [self._frozen_trial(name, trial) for trial in journal.get_all_trials(local, deepcopy, states)]


def dashboard_storage(config) -> tuple[BaseStorage, str]:
    """The storage the dashboard shows for a configuration, and what to call it."""
    if config.tune.storage:
        location = storage_location(config)  # the RDB URL, or the journal file tune.storage names
        if not is_rdb_url(location):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        return open_storage_at(location), redacted(location)
    directory = optuna_dir(config)
    return JournalDirectoryStorage(directory), f"{directory}/*{JOURNAL_SUFFIX}"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection does not hold up Ctrl-C


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # the browser polls every few seconds: no line per request
        pass


def serve(storage: BaseStorage, port: int, host: str = live_view.HOST, announce: str = "") -> None:
    """Serve optuna-dashboard on ``host:port`` until interrupted; ``announce`` is printed once it listens."""
    live_view.check_port(port)
    try:
        server = make_server(host, port, wsgi(storage), server_class=_ThreadingWSGIServer,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise live_view.port_error(port, exc, host) from None
    with server:
        print(announce or f"optuna-dashboard http://{host}:{port}/", flush=True)
        server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    args = live_view.parser("python -m spark_ml_pipeline.tune.dashboard", __doc__.splitlines()[0],
                            DEFAULT_PORT).parse_intermixed_args(argv)
    try:
        storage, where = dashboard_storage(live_view.load_config(args))
        serve(storage, args.port, announce=f"optuna-dashboard http://{live_view.HOST}:{args.port}/ · studies {where}"
                                           " · Ctrl-C stops it")
    except PipelineError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        print("optuna-dashboard stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
