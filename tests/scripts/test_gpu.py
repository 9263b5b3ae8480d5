"""GPU configuration without a GPU (docs/gpu.md): the discovery script, the worker advertisement, the fail-fast
/ CPU-fallback check, the Horovod build decision and the GPU dependency set.

Nothing here fakes a GPU result: a fake ``nvidia-smi`` (or ``nvcc``) first on a controlled PATH exercises the
scripts' decisions; no Spark session starts, nothing is trained or built.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spark_ml_pipeline.runtime import session as session_module
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.session import GpuUnavailableError, discover_gpus, get_session, resolve_device

ROOT = Path(__file__).resolve().parents[2]
DISCOVERY = ROOT / "scripts" / "get_gpus_resources.sh"
QUERY = "--query-gpu=index --format=csv,noheader"
# The tools the scripts use, linked into a directory that is the whole PATH: no real nvidia-smi or nvcc
# (this machine has a CUDA toolkit in /usr/local/bin) can leak in.
TOOLS = ["bash", "sh", "env", "mktemp", "rm", "timeout", "tr", "head", "sed", "cut", "sha256sum", "cat", "dirname",
         "sort"]


@pytest.fixture
def path_dir(tmp_path):
    """A PATH of only the basic tools; tests add fake nvidia-smi / nvcc to it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by the scripts under test"
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def fake(bin_dir: Path, name: str, body: str) -> Path:
    script = bin_dir / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def nvidia_smi(bin_dir: Path, kind: str) -> None:
    """A fake nvidia-smi that answers the discovery query like a host with two GPUs, a broken driver, or none."""
    body = {
        "two": "printf '0\\n1\\n'\n",
        "failing": "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\" >&2\n"
                   "exit 9\n",
        "none": "exit 0\n",
    }[kind]
    fake(bin_dir, "nvidia-smi", f'[ "$*" = "{QUERY}" ] || {{ echo "unexpected arguments: $*" >&2; exit 64; }}\n'
                                + body)


def run(args, path_dir: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(path_dir), "HOME": os.environ.get("HOME", "/tmp"), **env})


# --- 1. the discovery script --------------------------------------------------------------------------

def test_discovery_script_prints_spark_resource_json_for_each_listed_gpu(path_dir):
    nvidia_smi(path_dir, "two")
    done = run([DISCOVERY], path_dir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "gpu", "addresses": ["0", "1"]}
    assert done.stderr == ""


@pytest.mark.parametrize("kind, says", [
    (None, "nvidia-smi is not on PATH"),
    ("failing", "failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."),
    ("none", "lists no GPU"),
])
def test_discovery_script_fails_with_one_line_when_no_gpu_is_visible(path_dir, kind, says):
    if kind:
        nvidia_smi(path_dir, kind)
    done = run([DISCOVERY], path_dir)
    assert done.returncode == 1
    assert done.stdout == ""  # never a fake address
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("get_gpus_resources.sh: no GPU visible: ") and says in done.stderr


# --- 2. the worker advertisement (scripts/cluster.sh worker-opts; no cluster is started) ---------------

def cluster_worker_opts(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "GPUS_PER_WORKER"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "worker-opts"], capture_output=True,
                          text=True, timeout=60, env={**base, **env})


def test_cluster_worker_opts_advertise_gpus_with_the_discovery_script():
    done = cluster_worker_opts(GPUS_PER_WORKER="2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["-Dspark.worker.resource.gpu.amount=2",
                                   f"-Dspark.worker.resource.gpu.discoveryScript={DISCOVERY}"]


def test_cluster_worker_opts_are_empty_without_gpus_and_reject_a_bad_count():
    assert cluster_worker_opts().stdout == ""  # unset: the cluster starts exactly as before
    bad = cluster_worker_opts(GPUS_PER_WORKER="two")
    assert bad.returncode == 2 and "GPUS_PER_WORKER must be a positive integer" in bad.stderr


# --- 3. fail fast, or fall back to the CPU, before Spark starts -----------------------------------------

@pytest.fixture
def gpu_path(path_dir, monkeypatch):
    """PATH (for the discovery script resolve_device runs) = the basic tools; add a fake nvidia-smi or not."""
    monkeypatch.setenv("PATH", str(path_dir))
    return path_dir


LOCAL = SparkConfig(master="local[2]")


def test_cuda_is_kept_when_the_discovery_script_finds_a_gpu(gpu_path):
    nvidia_smi(gpu_path, "two")
    assert discover_gpus("scripts/get_gpus_resources.sh") == ["0", "1"]
    assert resolve_device(ComputeConfig(device="cuda"), LOCAL) == "cuda"


def test_cuda_without_a_visible_gpu_fails_at_start_naming_the_key_and_the_check(gpu_path, capsys):
    with pytest.raises(GpuUnavailableError) as raised:
        resolve_device(ComputeConfig(device="cuda"), LOCAL)
    message = str(raised.value)
    assert isinstance(raised.value, ConfigError) and "\n" not in message
    assert message.startswith("compute.device=cuda but no GPU is visible on this host (local mode")
    assert "get_gpus_resources.sh exited 1" in message and "nvidia-smi is not on PATH" in message
    assert "compute.allow_cpu_fallback=true" in message
    assert capsys.readouterr().err == ""


def test_a_failing_nvidia_smi_is_no_gpu_either(gpu_path):
    nvidia_smi(gpu_path, "failing")
    with pytest.raises(GpuUnavailableError, match="couldn't communicate with the NVIDIA driver"):
        resolve_device(ComputeConfig(device="cuda"), LOCAL)


def test_cpu_fallback_warns_once_and_runs_on_cpu(gpu_path, capsys):
    nvidia_smi(gpu_path, "none")
    assert resolve_device(ComputeConfig(device="cuda", allow_cpu_fallback=True), LOCAL) == "cpu"
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("warning: compute.device=cuda but no GPU is visible") and "lists no GPU" in err
    assert "running on the CPU (compute.allow_cpu_fallback=true)" in err


def test_no_check_for_cpu_or_for_a_cluster_whose_executors_hold_the_gpus(gpu_path):
    assert resolve_device(ComputeConfig(device="cpu"), LOCAL) == "cpu"
    cluster = SparkConfig(master="spark://127.0.0.1:7077")
    assert resolve_device(ComputeConfig(device="cuda"), cluster) == "cuda"  # Spark checks on the executors


def test_gpu_env_sets_the_fallback_key_false_and_get_session_fails_before_spark(gpu_path, monkeypatch):
    config = load_config("taxi_fare", ["local", "gpu"], [])
    assert config.compute.device == "cuda" and config.compute.allow_cpu_fallback is False
    monkeypatch.setattr(session_module, "spark_conf", lambda *a, **k: pytest.fail("Spark would start"))
    with pytest.raises(GpuUnavailableError, match=r"^compute\.device=cuda but no GPU"):
        get_session(config.spark, config.compute)


def test_get_session_fallback_sets_the_device_every_stage_reads(gpu_path, monkeypatch):
    config = load_config("taxi_fare", ["local", "gpu"], ["compute.allow_cpu_fallback=true"])
    seen = {}

    def stop_before_spark(spark, compute, python=None):
        seen["device"] = compute.device
        raise RuntimeError("stop before Spark")
    monkeypatch.setattr(session_module, "spark_conf", stop_before_spark)
    with pytest.raises(RuntimeError, match="stop before Spark"):
        get_session(config.spark, config.compute)
    assert seen["device"] == "cpu" and config.compute.device == "cpu"  # pipelines read config.compute.device


def test_spark_gpu_scheduling_is_requested_only_where_spark_schedules_gpus():
    cuda = ComputeConfig(device="cuda")
    gpu_keys = {"spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount",
                "spark.executor.resource.gpu.discoveryScript"}
    for master in ("local", "local[2]", "local[*]"):  # no executors: a task GPU amount would never be met
        assert not gpu_keys & set(session_module.spark_conf(SparkConfig(master=master), cuda))
    for master in ("local-cluster[2,1,1024]", "spark://127.0.0.1:7077"):
        conf = session_module.spark_conf(SparkConfig(master=master), cuda)
        assert gpu_keys <= set(conf) and conf["spark.executor.resource.gpu.discoveryScript"] == str(DISCOVERY)


def test_the_job_exits_2_with_one_error_line(gpu_path, monkeypatch, tmp_path, capsys):
    from spark_ml_pipeline.runtime.cli import run_stage

    monkeypatch.setattr(session_module, "spark_conf", lambda *a, **k: pytest.fail("Spark would start"))
    code = run_stage("run", "test", ["taxi_fare", "--env", "local,gpu", f"store.root={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: compute.device=cuda but no GPU")


# --- 5. the Horovod build decision (--print-flags builds nothing) ---------------------------------------

def fake_venv(tmp_path: Path, *dists: tuple[str, str]) -> Path:
    """A venv whose python sees only the given distributions (importlib.metadata) besides the stdlib."""
    site = tmp_path / "fake-venv" / "site"
    for name, version in dists:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    bin_dir = tmp_path / "fake-venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake(bin_dir, "python", f'PYTHONPATH="{site}" exec "{sys.executable}" -S "$@"\n')
    return bin_dir.parent


def print_flags(venv: Path, path_dir: Path, tmp_path: Path, **env) -> dict:
    done = run(["bash", ROOT / "scripts" / "build_horovod.sh", "--print-flags", venv], path_dir,
               SML_CACHE_DIR=str(tmp_path / "cache"), **env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return {"lines": lines, **dict(line.split("=", 1) for line in lines)}


def nvcc(bin_dir: Path) -> None:
    fake(bin_dir, "nvcc", "echo 'Cuda compilation tools, release 12.2, V12.2.140'\n")


CPU_FLAGS = ["HOROVOD_WITH_TENSORFLOW=1", "HOROVOD_WITHOUT_PYTORCH=1", "HOROVOD_WITHOUT_MXNET=1",
             "HOROVOD_WITHOUT_MPI=1", "HOROVOD_WITH_GLOO=1"]


def test_horovod_builds_cpu_only_without_cuda(path_dir, tmp_path):
    flags = print_flags(ROOT / ".venv", path_dir, tmp_path)  # the project venv: tensorflow-cpu
    assert flags["flavour"] == "cpu" and flags["reason"].startswith("no CUDA")
    assert flags["lines"][4:] == CPU_FLAGS
    # the CPU key is the one the script used before GPU support: existing cached wheels stay valid
    assert re.fullmatch(re.escape(str(tmp_path / "cache" / "wheels" / "horovod-0.28.1-")) + "[0-9a-f]{16}",
                        flags["cache"])


def test_nvcc_with_tensorflow_cpu_still_builds_cpu_only(path_dir, tmp_path):
    nvcc(path_dir)
    flags = print_flags(ROOT / ".venv", path_dir, tmp_path)
    assert flags["flavour"] == "cpu" and "HOROVOD_GPU_OPERATIONS" not in flags
    assert "CUDA found but the venv has tensorflow-cpu==" in flags["reason"]  # the lock's version


def test_cuda_and_tensorflow_cuda_build_horovod_with_nccl(path_dir, tmp_path):
    venv = fake_venv(tmp_path, ("tensorflow", "2.15.1"), ("numpy", "1.26.4"))
    without = print_flags(venv, path_dir, tmp_path)
    assert without["flavour"] == "cpu" and "HOROVOD_GPU_OPERATIONS" not in without
    nvcc(path_dir)
    flags = print_flags(venv, path_dir, tmp_path)
    assert flags["flavour"] == "nccl-cuda12.2"
    assert flags["lines"][4:] == CPU_FLAGS + ["HOROVOD_GPU_OPERATIONS=NCCL"]
    assert "/horovod-0.28.1-nccl-cuda12.2-" in flags["cache"] and flags["cache"] != without["cache"]
    homes = print_flags(venv, path_dir, tmp_path, CUDA_HOME="/opt/cuda-12.2", NCCL_HOME="/opt/nccl")
    assert homes["HOROVOD_CUDA_HOME"] == "/opt/cuda-12.2" and homes["HOROVOD_NCCL_HOME"] == "/opt/nccl"
    assert print_flags(venv, path_dir, tmp_path, SML_HOROVOD_GPU="0")["flavour"] == "cpu"


def test_cuda_home_alone_selects_the_nccl_build_with_its_nvcc(path_dir, tmp_path):
    venv = fake_venv(tmp_path, ("tensorflow", "2.15.1"), ("numpy", "1.26.4"))
    cuda_home = tmp_path / "cuda"
    (cuda_home / "bin").mkdir(parents=True)
    nvcc(cuda_home / "bin")
    flags = print_flags(venv, path_dir, tmp_path, CUDA_HOME=str(cuda_home), HOROVOD_NCCL_HOME="/opt/nccl")
    assert flags["flavour"] == "nccl-cuda12.2" and flags["HOROVOD_GPU_OPERATIONS"] == "NCCL"
    assert flags["HOROVOD_CUDA_HOME"] == str(cuda_home) and flags["HOROVOD_NCCL_HOME"] == "/opt/nccl"


def test_newer_tensorflow_gets_horovod_source_patches_in_its_cache_key(path_dir, tmp_path):
    """Horovod 0.28.1 was released for TF 2.15: from 2.16 horovod.tensorflow.keras takes tf.keras's backend, from
    2.19 its XLA ops (xla_mpi_ops.cc) are left out; 2.15 builds unpatched, under the key it always had."""
    def flags_for(tf_version):
        venv = fake_venv(tmp_path / tf_version, ("tensorflow-cpu", tf_version), ("numpy", "1.26.4"))
        return print_flags(venv, path_dir, tmp_path)

    plain, keras2, no_xla = flags_for("2.15.1"), flags_for("2.18.1"), flags_for("2.19.1")
    assert (plain["patches"], keras2["patches"], no_xla["patches"]) == ("none", "keras-backend",
                                                                        "keras-backend no-xla-ops")
    original = hashlib.sha256(f"{platform.python_version()} 2.15.1 1.26.4".encode()).hexdigest()[:16]
    assert plain["cache"].endswith(f"/horovod-0.28.1-{original}")  # the key from before the patches
    assert len({plain["cache"], keras2["cache"], no_xla["cache"]}) == 3


def test_both_tensorflow_builds_in_one_venv_is_an_error(path_dir, tmp_path):
    venv = fake_venv(tmp_path, ("tensorflow", "2.15.1"), ("tensorflow-cpu", "2.15.1"), ("numpy", "1.26.4"))
    done = run(["bash", ROOT / "scripts" / "build_horovod.sh", "--print-flags", venv], path_dir)
    assert done.returncode == 1 and "expected exactly one of tensorflow / tensorflow-cpu" in done.stderr


# --- 4. the GPU dependency set -------------------------------------------------------------------------

def pins(path: Path) -> dict[str, str]:
    """name (canonical) -> version of a requirements file of name==version lines."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def requirement_names(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            found[re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower()] = line
    return found


def test_gpu_in_is_base_in_with_tensorflow_cuda_instead_of_cpu():
    base = requirement_names(ROOT / "requirements" / "base.in")
    gpu = requirement_names(ROOT / "requirements" / "gpu.in")
    tensorflow = base.pop("tensorflow-cpu").split("#")[0].strip().removeprefix("tensorflow-cpu==")
    assert gpu.pop("tensorflow") == f"tensorflow[and-cuda]=={tensorflow}"
    assert gpu == base  # the same xgboost pin: its Linux x86_64 wheel is the CUDA build


def test_gpu_lock_differs_from_lock_only_by_tensorflow_cuda_and_its_nvidia_libraries():
    lock = pins(ROOT / "requirements" / "lock.txt")
    gpu = pins(ROOT / "requirements" / "gpu-lock.txt")
    assert lock.pop("tensorflow-cpu") == gpu.pop("tensorflow") == "2.19.1"
    nvidia = {name: gpu.pop(name) for name in list(gpu) if name.startswith("nvidia-")}
    # what tensorflow[and-cuda]==2.19.1 pins: CUDA 12.5, cuDNN 9.3, NCCL 2.23.4
    assert nvidia["nvidia-nccl-cu12"] == "2.23.4" and nvidia["nvidia-cudnn-cu12"] == "9.3.0.75"
    assert nvidia["nvidia-cuda-runtime-cu12"].startswith("12.5.")
    lock.pop("nvidia-nccl-cu12")
    assert gpu == lock, "regenerate requirements/gpu-lock.txt (docs/gpu.md, 'The GPU dependency set')"
    assert gpu["xgboost"] == "3.2.0" and "cupy-cuda12x" not in gpu


def test_tf_keras_matches_tensorflow_minor_in_both_locks_and_the_extras():
    """tf-keras is installed --no-deps (it requires the `tensorflow` distribution, which tensorflow-cpu provides
    under another name), so pip cannot check it against TensorFlow: a tf-keras of another minor imports and
    then fails inside Keras. Same for setup.cfg's extras, which a user installs without the locks."""
    keras = pins(ROOT / "requirements" / "no-deps.txt")["tf-keras"]
    minor = lambda version: version.split(".")[:2]
    for lock, name in (("lock.txt", "tensorflow-cpu"), ("gpu-lock.txt", "tensorflow")):
        assert minor(pins(ROOT / "requirements" / lock)[name]) == minor(keras), lock
    extras = (ROOT / "setup.cfg").read_text()
    pinned_in_extras = lambda name: re.findall(rf"^\s+{re.escape(name)}==([\d.]+)$", extras, flags=re.M)
    assert pinned_in_extras("tensorflow-cpu") == [pins(ROOT / "requirements" / "lock.txt")["tensorflow-cpu"]]
    assert pinned_in_extras("tensorflow[and-cuda]") == [pins(ROOT / "requirements" / "gpu-lock.txt")["tensorflow"]]
    assert pinned_in_extras("tf-keras") == [keras]  # [gpu] only: beside tensorflow-cpu pip cannot resolve it


def test_gpu_lock_resolves_from_the_index_and_is_complete(tmp_path):
    """pip (the project's, its configured index) resolves every pin and needs nothing the lock lacks.

    Reads wheel metadata only (--dry-run): about 30 s here with pip 24.3 (72 s with the 23.2 a new venv bundles)."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", str(report), "-r", str(ROOT / "requirements" / "gpu-lock.txt")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    resolved = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert resolved == pins(ROOT / "requirements" / "gpu-lock.txt")
