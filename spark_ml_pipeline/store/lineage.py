"""What a run was made from: data fingerprint, code version, library versions."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRACKED_LIBRARIES = ("pyspark", "xgboost", "tensorflow-cpu", "horovod", "numpy", "pandas", "pyarrow", "mlflow")


def data_fingerprint(files: list[tuple[str, int, int]]) -> str:
    """sha256 over (uri, size, mtime) of every input file: changes when any input file changes."""
    digest = hashlib.sha256()
    for uri, size, mtime in sorted(files):
        digest.update(f"{uri}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()


def git_commit(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The checked-out commit and whether the work tree differs from it ("unknown" outside git)."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def lineage_record(files: list[tuple[str, int, int]], config_snapshot: dict) -> dict:
    return {
        "data_fingerprint": data_fingerprint(files),
        "input_files": [{"uri": u, "size": s, "mtime_ms": m} for u, s, m in sorted(files)],
        **git_commit(),
        "libraries": library_versions(),
        "config": json.loads(json.dumps(config_snapshot, default=str)),
    }
