"""The production deployment (docker-compose.yml, docker/Dockerfile*, scripts/submit.sh), checked without a
Docker engine: `docker-compose config` (Debian's docker-compose v1, which validates offline) plus static
checks that the services, the images, conf/env/cluster.yaml and the submit script agree with each other.
Nothing here starts Spark or a container."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERFILE_GPU = ROOT / "docker" / "Dockerfile.gpu"
GPU_LOCK = ROOT / "requirements" / "gpu-lock.txt"
SUBMIT_SH = ROOT / "scripts" / "submit.sh"
ENV_EXAMPLE = ROOT / ".env.example"
SPARK_SERVICES = ("spark-master", "spark-worker", "spark-worker-gpu", "submit")
PROFILES = ("--profile", "gpu", "--profile", "submit")


# ------------------------------------------------------------------------------------------ helpers
def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: `apt-get update && apt-get install -y docker-compose` "
                    "(Debian's v1, validates compose files without a Docker engine), or "
                    "`python3 -m venv /tmp/dc && /tmp/dc/bin/pip install docker-compose` and put /tmp/dc/bin on PATH")
    return binary


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    """docker-compose with only `env_file` as variables: nothing leaks in from the caller's environment."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    return subprocess.run([docker_compose(), "--project-directory", str(ROOT), "--env-file", str(env_file),
                           "-f", str(COMPOSE), *PROFILES, *args],
                          capture_output=True, text=True, env=clean, timeout=120)


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory) -> Path:
    """A temporary directory whose .env is a copy of .env.example."""
    directory = tmp_path_factory.mktemp("compose")
    shutil.copy(ENV_EXAMPLE, directory / ".env")
    return directory


@pytest.fixture(scope="module")
def resolved(env_dir) -> dict:
    """`docker-compose config` with .env.example's values: the compose file as the engine would see it."""
    result = run_compose(env_dir / ".env", "config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def cluster_env() -> dict:
    return yaml.safe_load((ROOT / "conf" / "env" / "cluster.yaml").read_text())


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def lock_pin(package: str, lock: str = "lock.txt") -> str:
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements/{lock}")


def stages(dockerfile: Path) -> dict[str, str]:
    """Dockerfile text per build stage (keyed by the stage's name), with line continuations joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    parts = re.split(r"^FROM\s+", text, flags=re.M)
    result = {}
    for part in parts[1:]:
        header = part.splitlines()[0]
        name = re.search(r"\bAS\s+(\S+)", header, flags=re.I)
        result[name.group(1) if name else header.split()[0]] = "FROM " + part
    return result


def volume_targets(service: dict) -> set[str]:
    targets = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            targets.add(volume["target"])
        else:
            targets.add(volume.split(":")[1])
    return targets


def dry_run_submit(env: dict[str, str], *args: str) -> list[str]:
    """The command scripts/submit.sh would exec (DRY_RUN=1: printed shell-quoted, not run)."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
             "PYSPARK_PYTHON": sys.executable, "DRY_RUN": "1", **env}
    result = subprocess.run(["bash", str(SUBMIT_SH), *args], capture_output=True, text=True, env=clean,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


# ------------------------------------------------------------------------------------------ compose
def test_compose_config_is_valid_with_env_example(resolved):
    assert set(resolved["services"]) == {"spark-master", "spark-worker", "spark-worker-gpu", "postgres", "mlflow",
                                         "submit"}
    assert set(resolved["volumes"]) == {"store", "pgdata"}


def test_compose_refuses_to_start_without_credentials(env_dir):
    without_password = env_dir / "no-password.env"
    without_password.write_text("".join(f"{key}={value}\n" for key, value in env_example().items()
                                        if key != "POSTGRES_PASSWORD"))
    result = run_compose(without_password, "config")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr and ".env" in result.stderr, result.stderr


def test_every_variable_is_documented_in_env_example_and_env_is_ignored():
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    documented = set(env_example())
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git", "store"} <= set(ignored)


def test_published_ports_bind_loopback_only(raw, resolved):
    for compose in (raw, resolved):
        for name, service in compose["services"].items():
            for port in service.get("ports", []):
                spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
                assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} beyond 127.0.0.1"
    published = {name for name, service in resolved["services"].items() if service.get("ports")}
    assert published == {"spark-master", "mlflow"}


def test_no_literal_passwords_in_compose(raw):
    text = COMPOSE.read_text()
    assert env_example()["POSTGRES_PASSWORD"] not in text
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials inside a URI"
    for name, service in raw["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), \
                    f"{name}.{key} must come from .env as ${{VAR:?message}}, not {value!r}"


def test_master_port_and_store_root_agree_with_cluster_yaml(resolved, cluster_env):
    services = resolved["services"]
    conf_master = urlparse(cluster_env["spark"]["master"])
    assert conf_master.scheme == "spark" and conf_master.port == 7077
    port = str(conf_master.port)
    master_url = f"spark://spark-master:{port}"

    master_cmd = services["spark-master"]["command"]
    assert master_cmd[:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert master_cmd[master_cmd.index("--port") + 1] == port
    assert master_cmd[master_cmd.index("--host") + 1] == "spark-master" == services["spark-master"]["hostname"]
    for worker in ("spark-worker", "spark-worker-gpu"):
        command = services[worker]["command"]
        assert command[:2] == ["spark-class", "org.apache.spark.deploy.worker.Worker"]
        assert command[-1] == master_url
    assert services["submit"]["environment"]["MASTER"] == master_url
    # Outside Docker (make cluster-up) submit.sh defaults to cluster.yaml's master.
    default = re.search(r"^MASTER=\$\{MASTER:-([^}]+)\}", SUBMIT_SH.read_text(), flags=re.M).group(1)
    assert default == cluster_env["spark"]["master"]

    # Store: the same path in every Spark container and in mlflow; submit passes it as store.root.
    store = services["submit"]["environment"]["STORE_ROOT"]
    assert store == "/store"
    for name in (*SPARK_SERVICES, "mlflow"):
        assert store in volume_targets(services[name]), f"{name} does not mount the store at {store}"
        assert any(v.startswith("store:") for v in raw_volumes(services[name])), name
    mlflow_cmd = services["mlflow"]["command"]
    assert mlflow_cmd[mlflow_cmd.index("--artifacts-destination") + 1].startswith(store + "/")
    # cluster.yaml's root is relative to the working directory: in the images /app/<root> -> the store volume.
    conf_root = cluster_env["store"]["root"]
    assert not Path(conf_root).is_absolute()
    for dockerfile in (DOCKERFILE, DOCKERFILE_GPU):
        final = list(stages(dockerfile).values())[-1]
        assert "WORKDIR /app" in final
        assert f"ln -s {store} /app/{conf_root}" in final, dockerfile.name


def raw_volumes(service: dict) -> list[str]:
    return [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in service.get("volumes", [])]


def test_workers_and_submit_share_image_python_and_store(resolved):
    services = resolved["services"]
    worker, submit, gpu = services["spark-worker"], services["submit"], services["spark-worker-gpu"]
    assert worker["image"] == submit["image"] == services["spark-master"]["image"] == services["mlflow"]["image"]
    assert gpu["image"] != worker["image"] and gpu["image"].endswith(":" + worker["image"].rsplit(":", 1)[1])
    python = worker["environment"]["PYSPARK_PYTHON"]
    assert python == "/usr/local/bin/python"
    for service in (submit, gpu, services["spark-master"]):
        assert service["environment"]["PYSPARK_PYTHON"] == python
    assert volume_targets(worker) == volume_targets(submit) == volume_targets(gpu)
    for dockerfile in (DOCKERFILE, DOCKERFILE_GPU):
        assert f"PYSPARK_PYTHON={python}" in dockerfile.read_text()


def test_worker_is_scalable(raw):
    worker = raw["services"]["spark-worker"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"spark-worker sets {key}: `--scale spark-worker=N` would conflict"


def test_postgres_and_mlflow(resolved):
    services = resolved["services"]
    postgres, mlflow = services["postgres"], services["mlflow"]
    assert postgres["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.startswith("pgdata:/var/lib/postgresql/data") for v in raw_volumes(postgres))
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql") and "@postgres:5432/" in backend
    assert mlflow["environment"]["PGPASSWORD"] == env_example()["POSTGRES_PASSWORD"]  # from .env, not the URI
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:5000", "127.0.0.1:*"} <= set(hosts)  # the submit driver's and the published port's Host
    tracking = urlparse(services["submit"]["environment"]["TRACKING_URI"])
    assert (tracking.hostname, tracking.port) == ("mlflow", int(command[command.index("--port") + 1]))


def test_gpu_worker_reserves_nvidia_devices_and_offers_gpus(resolved):
    gpu = resolved["services"]["spark-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    options = gpu["environment"]["SPARK_WORKER_OPTS"]
    assert re.search(r"-Dspark\.worker\.resource\.gpu\.amount=\d+", options)
    script = re.search(r"-Dspark\.worker\.resource\.gpu\.discoveryScript=(\S+)", options).group(1)
    assert script == "/app/scripts/get_gpus_resources.sh"
    final = list(stages(DOCKERFILE_GPU).values())[-1]
    assert re.search(r"COPY --chmod=0755 .*scripts/get_gpus_resources\.sh scripts/", final)


# ------------------------------------------------------------------------------------------ images
@pytest.mark.parametrize("dockerfile, lock", [(DOCKERFILE, "lock.txt"), (DOCKERFILE_GPU, "gpu-lock.txt")])
def test_dockerfile_installs_the_locked_pyspark_and_builds_horovod(dockerfile, lock):
    text = dockerfile.read_text()
    pinned = lock_pin("pyspark")  # the CPU image runs the master: every image carries lock.txt's pyspark
    if (ROOT / "requirements" / lock).exists():
        assert lock_pin("pyspark", lock) == pinned, f"requirements/{lock} pins another pyspark than lock.txt"
    declared = re.findall(r"^ARG PYSPARK_VERSION=(\S+)", text, flags=re.M)
    assert declared and set(declared) == {pinned}, f"{dockerfile.name}: pyspark {declared} vs lock {pinned}"
    parts = stages(dockerfile)
    build, final = parts["build"], parts["runtime"]
    assert f"pip install -r requirements/{lock} \"pyspark==${{PYSPARK_VERSION}}\"" in build
    assert "pip install --no-deps -r requirements/no-deps.txt" in build
    assert "bash scripts/build_horovod.sh /usr/local" in build
    assert "cmake" in build and "build-essential" in build
    # Multi-stage: the toolchain stays in the build stage; the final image is non-root, non-editable.
    assert "cmake" not in final and "build-essential" not in final
    assert final.startswith("FROM base AS runtime")
    assert re.search(r"^USER sml$", final, flags=re.M)
    assert "pip install --no-deps /wheels/spark_ml_pipeline-" in final and " -e " not in final
    assert "ENV SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark" in final
    assert 'pyspark.__version__ == "${PYSPARK_VERSION}"' in final  # checked again inside the image


def test_cpu_and_gpu_bases():
    cpu = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", cpu, flags=re.M)
    assert "openjdk-17-jre-headless" in cpu
    gpu = DOCKERFILE_GPU.read_text()
    # The CUDA image must be the CUDA minor and cuDNN major that TensorFlow's pinned nvidia-* wheels are.
    pins = dict(line.split("==") for line in GPU_LOCK.read_text().splitlines() if "==" in line and line[0] != "#")
    cuda = ".".join(pins["nvidia-cuda-runtime-cu12"].split(".")[:2])
    cudnn = pins["nvidia-cudnn-cu12"].split(".")[0]
    cudnn_tag = "cudnn8" if cudnn == "8" else "cudnn"  # NVIDIA's tags name cuDNN 9 plainly "cudnn"
    for flavour in ("runtime", "devel"):
        image = re.search(rf"^ARG CUDA_{flavour.upper()}_IMAGE=(\S+)$", gpu, flags=re.M).group(1)
        assert re.fullmatch(rf"nvidia/cuda:{re.escape(cuda)}\.\d+-{cudnn_tag}-{flavour}-ubuntu22\.04", image), image
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in stages(DOCKERFILE_GPU)["build"]
    assert 'xgboost.build_info().get("USE_CUDA")' in gpu
    for text in (cpu, gpu):
        assert "ENTRYPOINT [\"/usr/bin/tini\", \"--\"]" in text


# ------------------------------------------------------------------------------------------ submit
def test_submit_service_runs_spark_submit_of_run_pipeline(resolved):
    submit = resolved["services"]["submit"]
    assert submit["profiles"] == ["submit"]
    assert submit["command"] == ["/app/scripts/submit.sh"] and submit["working_dir"] == "/app"
    env = {k: str(v) for k, v in submit["environment"].items()
           if k in ("MASTER", "TRACKING_URI", "STORE_ROOT", "PIPELINE", "SML_ENV", "SUBMIT_OPTS")}
    argv = dry_run_submit({**env, "DRIVER_HOST": "submit-host", "PY_FILES": ""}, "model.num_workers=2")
    assert Path(argv[0]).name == "spark-submit"
    assert argv[argv.index("--master") + 1] == "spark://spark-master:7077"
    assert "spark.driver.host=submit-host" in argv
    script = argv.index(str(ROOT / "jobs" / "run_pipeline.py"))
    job_args = argv[script + 1:]
    assert job_args[:3] == ["taxi_fare", "--env", "cluster"]
    assert {"store.root=/store", "store.tracking_uri=http://mlflow:5000"} <= set(job_args)
    assert job_args[-1] == "model.num_workers=2"

    # The project's own loader accepts these arguments (no Spark is started).
    from spark_ml_pipeline.runtime.config import load_pipeline
    overrides = [a for a in job_args[3:] if "=" in a]
    config, _ = load_pipeline("taxi_fare", ["cluster"], overrides)
    assert config.store.root == "/store" and config.store.tracking_uri == "http://mlflow:5000"
    assert config.spark.gpu.discovery_script == str(ROOT / "scripts" / "get_gpus_resources.sh")


def test_submit_script_defaults_target_make_cluster_up(cluster_env):
    argv = dry_run_submit({"PY_FILES": ""})
    assert argv[argv.index("--master") + 1] == cluster_env["spark"]["master"]
    assert "spark.driver.host=127.0.0.1" in argv  # loopback master: the driver listens on loopback only
    job_args = argv[argv.index(str(ROOT / "jobs" / "run_pipeline.py")) + 1:]
    assert job_args[:3] == ["taxi_fare", "--env", "cluster"]
    assert not any(a.startswith(("store.root=", "store.tracking_uri=")) for a in job_args)
    spark_home = Path(argv[0]).parents[1]
    import pyspark
    assert spark_home == Path(pyspark.__file__).parent  # the same pyspark (Spark version) as make cluster-up


def test_readme_cluster_block_records_into_the_store_that_make_store_up_starts(cluster_env):
    """The README's block (make cluster-up, make store-up, make dist, then scripts/submit.sh): the submitted run
    records into the tracking server `make store-up` starts (the URI `scripts/store.sh env` prints with its
    defaults), on the store root the server's artifacts use."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Running on a cluster", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert "make store-up" in block
    [submit_line] = [line for line in block.splitlines() if "scripts/submit.sh" in line]
    assignments = dict(word.split("=", 1) for word in shlex.split(submit_line.split("#")[0])
                       if "=" in word and not word.startswith("-"))
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    printed = subprocess.run(["bash", str(ROOT / "scripts" / "store.sh"), "env"], capture_output=True, text=True,
                             env=clean, timeout=60, check=True).stdout
    store_up = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    assert assignments == {"TRACKING_URI": store_up["store.tracking_uri"]}

    argv = dry_run_submit({"PY_FILES": "", **assignments})
    job_args = argv[argv.index(str(ROOT / "jobs" / "run_pipeline.py")) + 1:]
    assert f"store.tracking_uri={store_up['store.tracking_uri']}" in job_args
    # No store.root override: cluster.yaml's `store`, relative to the checkout, where store.sh keeps artifacts.
    assert not any(a.startswith("store.root=") for a in job_args) and cluster_env["store"]["root"] == "store"
    assert re.search(r'^root=\$\(realpath -m "\$\{STORE_ROOT:-\$PWD/store\}"\)$',
                     (ROOT / "scripts" / "store.sh").read_text(), flags=re.M)
