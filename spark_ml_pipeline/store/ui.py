"""``make mlflow-ui``: the MLflow UI on a pipeline's store, its runs and their artifacts (127.0.0.1 only).

    python -m spark_ml_pipeline.store.ui [PIPELINE] [key=value ...] [--port 5000]

The store comes from the pipeline's configuration, as the jobs resolve it
(:class:`~spark_ml_pipeline.store.tracking.Store`): the local store's tracking database
``sqlite:///<store root>/mlflow.db`` by default. This starts ``mlflow server``
on it (one worker) in place of this process. The runs' artifacts live where the runs recorded them
(``<store root>/artifacts/<experiment>/...``, ``file:`` URIs) and the server reads them from there; artifacts of
experiments created through the UI are served by the server from ``<store root>/artifacts`` as well
(``--serve-artifacts``). MLflow's host-header and CORS checks stay on: their defaults admit 127.0.0.1 and
localhost on any port, which is what the server listens on.

With ``store.tracking_uri`` an ``http(s)://`` tracking server (``make store-up``), that server already is the UI:
its address is printed and nothing is started.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from spark_ml_pipeline.runtime import live_view
from spark_ml_pipeline.runtime.cli import fail
from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.runtime.io import is_local_uri, local_path
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.runtime.database_urls import redacted

DEFAULT_PORT = 5000


def server_command(store: Store, port: int, host: str = live_view.HOST) -> list[str]:
    """The ``mlflow server`` command line for a store with a database of its own (not a tracking server)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store.tracking_uri,
               "--host", host, "--port", str(port), "--workers", "1", "--serve-artifacts"]
    artifacts = store.artifact_root
    if artifacts:
        destination = str(local_path(artifacts)) if is_local_uri(artifacts) else artifacts
        command += ["--artifacts-destination", destination]
    return command


def main(argv: Sequence[str] | None = None) -> int:
    args = live_view.parser("python -m spark_ml_pipeline.store.ui", __doc__.splitlines()[0],
                            DEFAULT_PORT).parse_intermixed_args(argv)
    try:
        store = Store(live_view.load_config(args).store)
        if store.uses_server:
            print(f"MLflow UI {store.tracking_uri} (the store's tracking server serves it; nothing to start)")
            return 0
        live_view.check_free(args.port)
        command = server_command(store, args.port)
    except PipelineError as exc:
        return fail(exc)
    print(f"MLflow UI http://{live_view.HOST}:{args.port}/ · runs {redacted(store.tracking_uri)}"
          f" · artifacts {store.artifact_root} · Ctrl-C stops it", flush=True)
    sys.stderr.flush()
    # MLflow 3's job runner (GenAI judges, prompt optimisation: nothing this project records) would start seven
    # huey worker processes beside the server; without it the UI starts in a third of the time.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(command[0], command)  # the server in place of this process: signals and exit code are its own
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
