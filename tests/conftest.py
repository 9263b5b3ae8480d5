"""One SparkSession for the whole test session (local[2], loopback, quiet), small shared data sets, and the
shared store for real: ``scripts/store.sh up`` (PostgreSQL + an MLflow tracking server proxying artifacts) on
free ports the kernel picks (or SML_TEST_STORE_PG_PORT / SML_TEST_STORE_MLFLOW_PORT), its state in a temporary
directory, ``down`` at the end.

``make test TEST_WORKERS=N`` runs the suite on N pytest-xdist workers (``-n N --dist loadgroup``; default one
process): each worker is a session of its own (its SparkSession, temporary directories, store and cluster), and
the tests that share a fixture set up once per module or class, or one of SHARED_ON_ONE_WORKER's, run on one
worker (see pytest_collection_modifyitems)."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def copy_conf():
    """``copy_conf(target)``: a writable copy of conf/ at ``target`` (base.yaml, env/, pipelines/)."""
    def copy(target: Path) -> Path:
        shutil.copytree(ROOT / "conf", target)
        return Path(target)
    return copy


@pytest.fixture(scope="session")
def spark():
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    session = get_session(SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="3g",
                                      app_name="spark-ml-pipeline-tests"), ComputeConfig())
    yield session
    session.stop()


def _generated(spark, tmp_path_factory, name, **spec):
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips

    output = str(tmp_path_factory.mktemp(name) / "raw")
    return output, write_trips(spark, GeneratorSpec(rows=6000, dirty_fraction=0.1, months=2, **spec), output)


@pytest.fixture(scope="session")
def legacy_csv(spark, tmp_path_factory):
    """Legacy-schema CSV trips with every kind of dirty row, malformed lines included."""
    return _generated(spark, tmp_path_factory, "legacy_csv", seed=3, tlc_schema="legacy", output_format="csv")


@pytest.fixture(scope="session")
def current_parquet(spark, tmp_path_factory):
    """Current-schema (taxi zone) Parquet trips."""
    return _generated(spark, tmp_path_factory, "current_parquet", seed=5, tlc_schema="current",
                      output_format="parquet")


# --- two workers (pytest-xdist, ``make test``: -n 2 --dist loadgroup) ----------------------------------------
# A test goes to whichever worker is free, except those that share a fixture: a fixture set up once per module or
# class (a worker coming back to a module after another's tests would set it up again), or one of the session
# fixtures below, set up once on the worker that runs its tests. Such tests form one xdist_group, with every test
# sharing another fixture with one of them (a module's tests and the cluster's, say): loadgroup sends a group to
# one worker as a whole, largest groups first.
SHARED_ON_ONE_WORKER = {
    "cluster",  # a standalone master and two one-core workers (2 GiB each): one on the machine, not one per worker
    "tiny_dl_run",  # each deep-learning pipeline's tiny run, shared across modules (the GAN tests' judge)
}


def _scope_keys(item: pytest.Item) -> list[str]:
    """What ``item`` shares with other tests: its explicit xdist_group, the module / class / package of each
    fixture of such a scope it uses (directly or not), the SHARED_ON_ONE_WORKER fixtures it uses."""
    keys = [mark.args[0] if mark.args else mark.kwargs.get("name", "default")
            for mark in item.iter_markers("xdist_group")]
    module = item.nodeid.split("::", 1)[0]
    for name, definitions in item._fixtureinfo.name2fixturedefs.items():
        scope = definitions[-1].scope
        if scope == "module":
            keys.append(module)
        elif scope == "class":
            keys.append(item.nodeid.rsplit("::", 1)[0])
        elif scope == "package":
            keys.append(module.rsplit("/", 1)[0])
        elif scope == "session" and name in SHARED_ON_ONE_WORKER:
            keys.append(name)
    return keys


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks (it names tests <id>@<group>)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key] = parent[parent[key]]
        return key

    keys = {item.nodeid: _scope_keys(item) for item in items}
    for found in keys.values():
        for key in found:
            parent[root(key)] = root(found[0])
    members: dict[str, list[str]] = {}
    for key in parent:
        members.setdefault(root(key), []).append(key)
    # A group's name: its SHARED_ON_ONE_WORKER fixtures, else its first module (stable between runs).
    names = {top: "+".join(sorted(set(found) & SHARED_ON_ONE_WORKER)) or min(found) for top, found in members.items()}
    for item in items:
        if keys[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(names[root(keys[item.nodeid][0])]), append=False)


# --- the shared store (PostgreSQL + MLflow tracking server) ------------------------------------------

SCRIPT = ROOT / "scripts" / "store.sh"
PG_BIN = Path(os.environ.get("STORE_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class StoreServer:
    tracking_uri: str  # store.tracking_uri=
    storage: str  # tune.storage= (the optuna database)
    mlflow_db: str  # the MLflow backend store (PostgreSQL), to check what the server recorded
    artifacts: Path  # where the server keeps the artifacts it proxies
    env: dict = field(repr=False)  # the environment the script ran with (ports, state dir, credentials)


def _port(span: int = 1) -> str:
    """A free port on 127.0.0.1 that the kernel picks, with the ``span - 1`` ports above it free too (a cluster's
    workers' UIs). Never a fixed default: two xdist workers, or two sessions, would both find it free and both
    take it."""
    for _ in range(100):
        probes = [socket.socket() for _ in range(span)]
        try:
            probes[0].bind(("127.0.0.1", 0))
            port = probes[0].getsockname()[1]
            for offset, probe in enumerate(probes[1:], 1):
                probe.bind(("127.0.0.1", port + offset))
            return str(port)
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no {span} free consecutive ports on 127.0.0.1")


def _worker_port(variable: str) -> str | None:
    """The port the environment variable ``variable`` fixes, if set: plus 10 for each xdist worker before this one
    (gw0 takes it as given, gw1 ten above), so that workers never share one."""
    fixed = os.environ.get(variable)
    if not fixed:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return str(int(fixed) + 10 * int(worker.removeprefix("gw") or 0))


def _script(command: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def store_server(tmp_path_factory):
    if not (PG_BIN / "pg_ctl").exists():  # every project machine has it (docs/store.md): not a reason to skip
        pytest.fail(f"PostgreSQL 15 is not installed in {PG_BIN} (apt-get install postgresql-15)")
    # PostgreSQL runs as the postgres OS user, which must reach its data directory: not under pytest's tmp dirs
    # (/tmp/pytest-of-<user> is 0700, and every pytest session starting meanwhile resets it to 0700).
    state = Path(tempfile.mkdtemp(prefix="sml-store-db-"))
    state.chmod(0o755)
    root = tmp_path_factory.mktemp("store-server-root")
    env = {**os.environ,
           "STORE_DB_DIR": str(state), "STORE_ROOT": str(root),
           "STORE_PG_PORT": _worker_port("SML_TEST_STORE_PG_PORT") or _port(),
           "STORE_MLFLOW_PORT": _worker_port("SML_TEST_STORE_MLFLOW_PORT") or _port(),
           "STORE_PG_USER": "sml_test", "STORE_PG_PASSWORD": secrets.token_hex(8)}
    up = _script("up", env)
    if up.returncode != 0:
        _script("down", env, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
        pytest.fail(f"scripts/store.sh up failed:\n{up.stdout}\n{up.stderr}")
    uris = dict(line.split("=", 1) for line in _script("env", env).stdout.splitlines() if "=" in line)
    server = StoreServer(tracking_uri=uris["store.tracking_uri"], storage=uris["tune.storage"],
                         mlflow_db=uris["tune.storage"].rsplit("/", 1)[0] + "/mlflow",
                         artifacts=root / "artifacts", env=env)
    try:
        yield server
    finally:
        down = _script("down", env, timeout=120)
        if down.returncode == 0:
            shutil.rmtree(state, ignore_errors=True)  # else kept, with its logs
        assert down.returncode == 0, down.stdout + down.stderr


# --- a Spark standalone cluster on 127.0.0.1 (scripts/cluster.sh) ------------------------------------------

@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """``spark://127.0.0.1:<port>``: a master and two one-core workers of 2 GiB, started once per session (its
    tests are one xdist group: one cluster on the machine) on free ports the kernel picks (a developer's own
    cluster on 7077 is left alone; SML_TEST_CLUSTER_PORT / SML_TEST_CLUSTER_UI_PORT fix them)."""
    state = tmp_path_factory.mktemp("cluster")
    port = _worker_port("SML_TEST_CLUSTER_PORT") or _port()
    env = {**os.environ, "SML_CLUSTER_DIR": str(state), "SML_CLUSTER_PORT": port,
           # the master's UI on this port, worker i's on this port + i (scripts/cluster.sh)
           "SML_CLUSTER_UI_PORT": _worker_port("SML_TEST_CLUSTER_UI_PORT") or _port(span=3),
           "SML_CLUSTER_WORKER_MEMORY": "2g", "VENV": os.path.relpath(Path(sys.executable).parents[1], ROOT)}
    up = subprocess.run(["bash", "scripts/cluster.sh", "up"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield f"spark://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", "scripts/cluster.sh", "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)


# --- the browser ---------------------------------------------------------------------------------------
# Browser tests: Playwright's sync API driving Debian's Chromium (``apt_install chromium`` in
# scripts/setup_env.sh; Playwright never downloads a browser here), headless.
#
# Fixtures:
#
# * ``browser`` (session): a ``playwright.sync_api.Browser``.
# * ``open_page`` (function): ``open_page(url_or_path, wait_for=None, timeout=30) -> OpenedPage``. Opens a new
#   page (its own browser context, viewport 1400x1000), records JavaScript errors (console messages of type
#   ``error`` and uncaught exceptions), goes to the URL (a ``Path``, or a string without ``://``, is a local file:
#   a ``file://`` URL), waits for the CSS selector ``wait_for`` if given (``timeout`` seconds for each), and returns
#   ``OpenedPage(page, errors, url)``; ``errors`` keeps filling while the test goes on. Pages close after the test.
# * ``save_screenshot`` (function): ``save_screenshot(page, name) -> Path``, a full-page PNG named ``name``
#   (``.png`` added when missing) in ``docs/img/`` when ``UPDATE_SCREENSHOTS=1``, else in pytest's temporary
#   directory (so ``make test`` never changes the checkout).
# * ``check_report`` (function): ``check_report(path, screenshot=None) -> list[int]`` opens one of the project's
#   HTML reports and asserts what a reader needs: no JavaScript error, every plotly figure drawn with data marks
#   (points, lines, bars, boxes or heatmap images in its SVG) and a visible size, nothing wider than the page;
#   returns the marks per figure.


CHROMIUM = os.environ.get("SML_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1000}
SCREENSHOTS = ROOT / "docs" / "img"
UPDATE_SCREENSHOTS_ENV = "UPDATE_SCREENSHOTS"


@dataclass
class OpenedPage:
    page: Page
    errors: list[str] = field(default_factory=list)  # "console.error: <text> (at <url>)" / "pageerror: <message>"
    url: str = ""


def as_url(url_or_path: str | Path) -> str:
    """A URL as given; a local path (``Path``, or a string without a scheme) as an absolute ``file://`` URL."""
    if isinstance(url_or_path, Path) or ("://" not in url_or_path and not url_or_path.startswith(("about:", "data:"))):
        return Path(url_or_path).resolve().as_uri()
    return url_or_path


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox cannot start as root (the set-up runs as root on these machines).
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Browser):
    opened: list[OpenedPage] = []

    def open_(url_or_path: str | Path, wait_for: str | None = None, timeout: float = 30) -> OpenedPage:
        page = browser.new_page(viewport=VIEWPORT)
        result = OpenedPage(page=page, url=as_url(url_or_path))
        opened.append(result)

        def on_console(message) -> None:
            if message.type == "error":
                where = (message.location or {}).get("url", "")
                result.errors.append(f"console.error: {message.text}" + (f" (at {where})" if where else ""))

        page.on("console", on_console)
        page.on("pageerror", lambda error: result.errors.append(f"pageerror: {error}"))
        page.set_default_timeout(timeout * 1000)
        page.goto(result.url, timeout=timeout * 1000)
        if wait_for:
            page.wait_for_selector(wait_for, timeout=timeout * 1000)
        return result

    yield open_
    for item in opened:
        if not item.page.is_closed():
            item.page.close()  # a page of browser.new_page owns its context: closed with it


@pytest.fixture
def save_screenshot(tmp_path_factory) -> Callable[[Page, str], Path]:
    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        directory = SCREENSHOTS
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = tmp_path_factory.getbasetemp() / "screenshots"
        directory.mkdir(exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = directory / (name if name.endswith(".png") else f"{name}.png")
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


# The SVG elements plotly draws data as: markers, lines, bars, boxes, heatmap images.
DATA_MARKS = ".scatterlayer path.point, .scatterlayer path.js-line, .barlayer path, .boxlayer path, .hm image"


@pytest.fixture
def check_report(open_page, save_screenshot) -> Callable[..., list[int]]:
    def check(path: str | Path, screenshot: str | None = None) -> list[int]:
        opened = open_page(path, wait_for=".js-plotly-plot")
        page = opened.page
        page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                               ".every(d => d._fullLayout && d.querySelector('.main-svg'))")
        figures = page.evaluate("""marks => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
            marks: d.querySelectorAll(marks).length, height: d.getBoundingClientRect().height,
            width: d.getBoundingClientRect().width}))""", DATA_MARKS)
        assert not opened.errors, opened.errors
        assert figures and all(f["marks"] > 0 for f in figures), figures
        assert all(f["height"] >= 150 and f["width"] >= 300 for f in figures), figures
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        if screenshot:
            save_screenshot(page, screenshot)
        return [f["marks"] for f in figures]

    return check

