"""Darcy flow samples shipped in the PyPI package neuraloperator (0.3.0), read without torch.

The files were written by torch.save: a zip holding ``<name>/data.pkl`` (a pickle whose tensors refer to
storages by persistent id) and one raw little-endian blob per storage, ``<name>/data/<key>``. The
unpickler below resolves only the few torch globals a tensor needs, into numpy arrays, and refuses every
other global, so reading a file cannot run code from it.

Each file is a dict: "x", the coefficient maps (bool, N x R x R: the permeability field thresholded to two
values), and "y", the pressure solutions (float32, N x R x R). Their strides are column-major.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from spark_ml_pipeline.ingest.packaged import find_package_file
from spark_ml_pipeline.runtime.errors import DataError

PACKAGE = "neuralop"
PYPI_NAME = "neuraloperator"
RELATIVE_DIR = "datasets/data"
DIR_ENV = "SML_DARCY_DIR"
SPLITS = ("train", "test")

# torch storage class name -> element type of its raw blob (little-endian unless the archive says otherwise).
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "UntypedStorage": "u1",
}


class _StorageType:
    """Stands in for torch.<Name>Storage in the pickle: only its name (hence dtype) matters."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _as_array(storage: np.ndarray, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous copy of the tensor view (offset, size, stride in elements) of a storage, bounds-checked
    because as_strided would otherwise read past the blob."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or storage_offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise ValueError(f"invalid tensor layout: offset {storage_offset}, size {size}, stride {stride}")
    if 0 in size:
        return np.empty(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(storage):
        raise ValueError(f"tensor layout (offset {storage_offset}, size {size}, stride {stride}) "
                         f"exceeds its storage of {len(storage)} elements")
    base = storage[storage_offset:]
    view = np.lib.stride_tricks.as_strided(base, shape=size, strides=[s * storage.itemsize for s in stride],
                                           writeable=False)
    return np.array(view, order="C")


def _rebuild_tensor_v2(storage: np.ndarray, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       requires_grad: bool = False, backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_tensor(storage: np.ndarray, storage_offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...]) -> np.ndarray:
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_parameter(data: np.ndarray, requires_grad: bool = False, backward_hooks: Any = None) -> np.ndarray:
    return data


_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
}


class TorchUnpickler(pickle.Unpickler):
    """Unpickles a torch.save data.pkl into numpy arrays, reading storages from the open zip archive."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, big_endian: bool = False) -> None:
        # Read into memory (it is small) so no zip member stays open when unpickling fails.
        super().__init__(io.BytesIO(archive.read(f"{prefix}data.pkl")))
        self._archive = archive
        self._prefix = prefix
        self._big_endian = big_endian
        self._storages: dict[str, np.ndarray] = {}  # tensors may share a storage: read each blob once

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            self._storages[key] = self._read_storage(storage_type, str(key), int(numel))
        return self._storages[key]

    def _read_storage(self, storage_type: _StorageType, key: str, numel: int) -> np.ndarray:
        member = f"{self._prefix}data/{key}"
        try:
            blob = self._archive.read(member)
        except KeyError:
            raise pickle.UnpicklingError(f"storage record {member} is missing") from None
        dtype = storage_type.dtype.newbyteorder(">") if self._big_endian else storage_type.dtype
        if len(blob) < numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage record {member} has {len(blob)} bytes, "
                                         f"{numel} x {storage_type.name} need {numel * dtype.itemsize}")
        array = np.frombuffer(blob, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))
        if storage_type.name == "BFloat16Storage":  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _archive_prefix(path: Path, archive: zipfile.ZipFile) -> str:
    """The record directory ("archive/" or the file's stem and "/"): the one holding data.pkl."""
    pickles = [name for name in archive.namelist() if name.endswith("data.pkl") and name.count("/") <= 1]
    if len(pickles) != 1:
        raise DataError(f"{path}: not a torch.save archive (expected one data.pkl, found {len(pickles)})")
    return pickles[0][: -len("data.pkl")]


def read_torch_file(path: str | Path) -> Any:
    """The object saved with torch.save (zip format, torch >= 1.6), with every tensor as a numpy array."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: torch file not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a zip-format torch.save file ({exc})") from None
    with archive:
        prefix = _archive_prefix(path, archive)
        big_endian = False
        if f"{prefix}byteorder" in archive.namelist():
            big_endian = archive.read(f"{prefix}byteorder").strip() == b"big"
        try:
            return TorchUnpickler(archive, prefix, big_endian).load()
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError, IndexError, KeyError,
                zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: cannot unpickle {prefix}data.pkl ({exc})") from None


def darcy_dir() -> Path:
    """$SML_DARCY_DIR, or the data directory inside the installed neuraloperator package."""
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override)
    directory = find_package_file(PACKAGE, RELATIVE_DIR)
    if directory is None:
        raise DataError(f"{PACKAGE}/{RELATIVE_DIR}: Darcy flow data not found; install the PyPI package "
                        f"{PYPI_NAME}==0.3.0 (pip install --no-deps {PYPI_NAME}==0.3.0) or set {DIR_ENV}")
    return directory


def _fields(path: Path, data: Any, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y as float32 (N, R, R), with a singleton channel dimension squeezed away."""
    if not isinstance(data, dict) or not {"x", "y"} <= data.keys():
        found = sorted(data.keys()) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected a dict with keys 'x' and 'y', found {found}")
    fields = []
    for key in ("x", "y"):
        array = np.asarray(data[key])
        if array.ndim == 4 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 3 or array.shape[1:] != (resolution, resolution):
            raise DataError(f"{path}: '{key}' has shape {array.shape}, expected (N, {resolution}, {resolution})")
        fields.append(array.astype(np.float32))
    x, y = fields
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} coefficient maps but {len(y)} solutions")
    return x, y


def load_darcy(split: str = "train", resolution: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient maps x and solution fields y, float32 of shape (N, R, R).

    neuraloperator 0.3.0 ships train at 16 (1000 samples) and test at 16 and 32 (50 samples each).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = darcy_dir() / f"darcy_{split}_{resolution}.pt"
    if not path.is_file():
        raise DataError(f"{path}: Darcy flow file not found (the PyPI package {PYPI_NAME}==0.3.0 ships "
                        f"darcy_train_16.pt, darcy_test_16.pt and darcy_test_32.pt; or set {DIR_ENV})")
    return _fields(path, read_torch_file(path), resolution)
