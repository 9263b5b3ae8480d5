"""The live views for real: ``python -m spark_ml_pipeline.tune.dashboard`` (``make dashboard``) and
``python -m spark_ml_pipeline.store.ui`` (``make mlflow-ui``) as processes of their own on free ports, against a
store in a temporary directory that holds real Optuna studies (journal files laid out by the search's own
functions) and a real MLflow run with a ``report.html`` artifact; Chromium looks at them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_NAME = "live-views-run"
REPORT_TITLE = "Live views test report"
STUDY_TRIALS = 6
# Builds the store in a process of its own (the project's functions set MLflow's process-wide tracking URI).
MAKE_STORE = f"""
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import optuna
from spark_ml_pipeline.report import sections
from spark_ml_pipeline.report.document import Report
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.tune.search import open_storage, study_name

optuna.logging.set_verbosity(optuna.logging.WARNING)
root = sys.argv[1]


def objective(trial):
    depth = trial.suggest_int("max_depth", 3, 10)
    rate = trial.suggest_float("learning_rate", 0.03, 0.3, log=True)
    for step in (25, 50, 100):
        trial.report((depth - 6) ** 2 / step + rate, step)
    return (depth - 6) ** 2 / 100 + rate + 2.0


names = []
for sampler in ("tpe", "random"):  # two searches of the store: two journal files
    config, _ = load_pipeline("taxi_fare", ["local"], [f"store.root={{root}}", f"tune.sampler={{sampler}}"])
    study = optuna.create_study(storage=open_storage(config), study_name=study_name(config), direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=7))
    study.optimize(objective, n_trials={STUDY_TRIALS} if sampler == "tpe" else 3)
    names.append(study.study_name)

store = Store(config.store)
with store.run("taxi_fare", "{RUN_NAME}") as run:
    mlflow.log_metric("test_rmse", 2.1)
    # A real run report (the project's report module) on seeded numbers: what the UI must show.
    rng = np.random.default_rng(0)
    actual = rng.gamma(2.0, 6.0, 300)
    report = Report("{REPORT_TITLE}", {{"test RMSE": 2.1}})
    sections.learning_curves(report, {{"rmse": [9.0, 4.0, 2.5], "val_rmse": [9.5, 4.5, 2.9]}}, "boosting round")
    sections.regression(report, actual, actual + rng.normal(0, 2.1, 300), "fare_amount")
    mlflow.log_artifact(str(report.write(Path(tempfile.mkdtemp()) / "report.html")))
print(run.info.experiment_id, run.info.run_id, *names)
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self, ready_path: str, timeout: float = 120) -> None:
        """Until ``ready_path`` answers 200; fails with the server's output if it exits or never does."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"{self.name} did not answer {ready_path} within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        """Terminate the server's process group (the MLflow server has a uvicorn child), killing it if it lingers."""
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(name: str, module: str, store_root: Path, port: int, logs: Path) -> Server:
    log = logs / f"{name}.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", module, "taxi_fare", f"store.root={store_root}",
                                    "--port", str(port)], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # a process group of its own: stopped as one
    return Server(name, process, log, port)


@dataclass
class LiveStore:
    root: Path
    experiment_id: str
    run_id: str
    studies: list[str]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(store, dashboard, empty-store dashboard, MLflow UI): the servers up, stopped at the end."""
    base = tmp_path_factory.mktemp("live-views")
    root, empty_root, logs = base / "store", base / "empty-store", base / "logs"
    logs.mkdir()
    servers = []
    try:
        # The dashboards start while the store is being filled: they list the journal directory on every request.
        dashboard = start("dashboard", "spark_ml_pipeline.tune.dashboard", root, free_port(), logs)
        empty = start("dashboard-empty-store", "spark_ml_pipeline.tune.dashboard", empty_root, free_port(), logs)
        servers += [dashboard, empty]
        made = subprocess.run([sys.executable, "-c", MAKE_STORE, str(root)], cwd=ROOT, capture_output=True,
                              text=True, timeout=180)
        assert made.returncode == 0, made.stdout + made.stderr
        experiment_id, run_id, *studies = made.stdout.split()
        store = LiveStore(root, experiment_id, run_id, studies)
        # The MLflow server after the store exists: both would otherwise create the tracking database at once.
        ui = start("mlflow-ui", "spark_ml_pipeline.store.ui", root, free_port(), logs)
        servers.append(ui)
        for server in (dashboard, empty):
            server.wait_until_up("/api/studies")
        ui.wait_until_up("/health")
        yield store, dashboard, empty, ui
    finally:
        for server in servers:
            server.stop()


def test_each_view_prints_its_url_and_listens_on_loopback_only(live):
    store, dashboard, empty, ui = live
    for server in (dashboard, empty, ui):
        first = server.output().splitlines()[0]
        assert f"http://127.0.0.1:{server.port}/" in first, first
    assert f"studies {store.root}/optuna/*.journal" in dashboard.output().splitlines()[0]
    assert f"runs sqlite:///{store.root}/mlflow.db" in ui.output().splitlines()[0]
    for port in (dashboard.port, ui.port):  # not on another address of this host
        with socket.socket() as sock:
            sock.bind(("127.0.0.2", port))


def test_a_taken_port_is_one_line(live):
    store, dashboard, _, ui = live
    # Each view on the other's port: the dashboard binds itself, the UI checks before starting mlflow server.
    runs = [subprocess.Popen([sys.executable, "-m", module, "taxi_fare", f"store.root={store.root}", f"--port={port}"],
                             cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for module, port in (("spark_ml_pipeline.tune.dashboard", ui.port),
                                 ("spark_ml_pipeline.store.ui", dashboard.port))]
    for process, port in zip(runs, (ui.port, dashboard.port)):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2, out + err
        assert err.strip() == (f"error: port {port} on 127.0.0.1 is already in use (another dashboard or server?): "
                               f"stop it or choose another (make ... PORT={port + 1}, or --port {port + 1})"), err


def test_dashboard_lists_the_studies_and_draws_the_history(live, open_page, save_screenshot):
    store, dashboard, _, _ = live
    home = open_page(f"{dashboard.url}/dashboard", wait_for='a[href^="/dashboard/studies/"]')
    home.page.wait_for_function("n => document.querySelectorAll('a[href^=\"/dashboard/studies/\"]').length >= n",
                                arg=len(store.studies))
    listed = home.page.locator('a[href^="/dashboard/studies/"] h5').all_inner_texts()
    assert sorted(text.split(". ", 1)[1] for text in listed) == sorted(store.studies), listed

    main = store.studies[0]  # the first search: 6 complete trials
    home.page.locator("a", has_text=main).click()
    points = home.page.locator("#plot-history .scatterlayer .point")
    points.nth(STUDY_TRIALS - 1).wait_for()  # plotly drew one marker per complete trial
    assert points.count() >= STUDY_TRIALS
    assert home.page.locator("#plot-history .scatterlayer path.js-line").count() >= 1  # the best-value line
    save_screenshot(home.page, "dashboard.png")
    assert home.errors == []


def test_dashboard_on_a_store_without_studies_lists_none(live, open_page):
    """A fresh machine after ``make run``: no search yet, no optuna/ directory; an empty list, not a crash."""
    _, _, empty, _ = live
    with urllib.request.urlopen(f"{empty.url}/api/studies", timeout=10) as response:
        assert response.read().decode() == '{"study_summaries": []}'
    home = open_page(f"{empty.url}/dashboard", wait_for="text=Create")
    assert home.page.locator('a[href^="/dashboard/studies/"]').count() == 0
    assert home.errors == []
    assert empty.process.poll() is None


# The MLflow UI asks /ajax-api/2.0/mlflow/users/current for the signed-in user; only MLflow's basic-auth app
# serves it, so without authentication the request is a 404 the browser reports as a console error (the UI
# handles it: no user shown). Nothing else may be logged as an error.
MLFLOW_NO_AUTH_404 = ("Failed to load resource: the server responded with a status of 404",
                      "/ajax-api/2.0/mlflow/users/current")


def _mlflow_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not all(part in e for part in MLFLOW_NO_AUTH_404)]


def test_mlflow_ui_lists_the_run_and_previews_its_report(live, open_page, save_screenshot):
    store, _, _, ui = live
    runs = open_page(f"{ui.url}/#/experiments/{store.experiment_id}/runs", wait_for=f'a:has-text("{RUN_NAME}")')
    # The UI's "Model training" view (its default is GenAI's); the choice sticks for the pages opened next.
    runs.page.get_by_text("Model training", exact=True).click()
    runs.page.wait_for_url("**workflowType=machine_learning**")
    link = runs.page.locator("a", has_text=RUN_NAME)
    link.wait_for()
    assert link.count() == 1
    assert store.run_id in link.get_attribute("href")

    link.click()
    runs.page.get_by_role("tab", name="Artifacts").click()
    runs.page.get_by_text("report.html", exact=True).first.click()
    report = runs.page.frame_locator("iframe.mlflow-html-iframe")  # MLflow previews HTML in a sandboxed iframe
    assert report.locator("h1").inner_text() == REPORT_TITLE
    assert "test RMSE 2.1" in report.locator(".facts").inner_text()
    # Its figures are drawn inside the preview too (MLflow's sandboxed iframe runs the embedded plotly.js).
    report.locator(".js-plotly-plot").nth(2).locator(".main-svg").first.wait_for()
    assert report.locator(".js-plotly-plot").count() == 3
    assert report.locator(".scatterlayer path.point").count() >= 300
    assert f"/runs/{store.run_id}/artifacts" in runs.page.url

    close_assistant = runs.page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close_assistant.count():  # MLflow 3's assistant side panel: closed so the screenshot shows the run
        close_assistant.click()
    save_screenshot(runs.page, "mlflow_ui_run.png")
    assert _mlflow_errors(runs.errors) == [], runs.errors
