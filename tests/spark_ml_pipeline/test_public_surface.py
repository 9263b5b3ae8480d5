"""Every package of the library and of ``features`` states its public surface: a docstring of what it offers and
an ``__all__`` whose every name resolves; a package whose surface is its modules lists every one of them."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Re-exports names from its modules (specs and builders) instead of listing the modules.
NAMES_NOT_MODULES = {"spark_ml_pipeline.train.models"}


def packages() -> list[str]:
    found = []
    for top in ("spark_ml_pipeline", "features"):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            if "__pycache__" not in init.parts:
                found.append(".".join(init.parent.relative_to(ROOT).parts))
    return found


def submodules(package) -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))


@pytest.mark.parametrize("name", packages())
def test_every_package_states_its_surface_and_every_name_resolves(name):
    package = importlib.import_module(name)
    assert (package.__doc__ or "").strip(), f"{name}: no docstring saying what the package offers"
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list) and exported, f"{name}: no __all__"
    assert len(set(exported)) == len(exported), f"{name}: __all__ repeats a name"
    modules = submodules(package)
    for item in exported:
        if item in modules:
            importlib.import_module(f"{name}.{item}")  # what `from package import *` does for a module
        assert hasattr(package, item), f"{name}.__all__ names {item!r}, which does not resolve"
    if name not in NAMES_NOT_MODULES:
        assert sorted(exported) == modules, f"{name}.__all__ should list its modules {modules}"


def test_importing_the_library_imports_no_spark_or_tensorflow():
    probe = ("import sys, spark_ml_pipeline, features; "
             "print(sorted(m for m in ('pyspark', 'tensorflow', 'horovod', 'mlflow', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
