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
import math
import os
import pickle
import reprlib
import types
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
# Read-only: nothing a pickle can reach refers to it.
_STORAGE_DTYPES = types.MappingProxyType({
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "UntypedStorage": "u1",
})

# Limits on what one file may make the reader read or allocate; each is overridable per call of read_torch_file.
MAX_ELEMENTS = 50_000_000           # elements of any one tensor (and of any one storage)
MAX_PICKLE_BYTES = 16 * 1024 * 1024  # the data.pkl member (the real files' is under 1 KiB)
MAX_STORAGE_BYTES = 512 * 1024 * 1024  # any one storage member data/<key>
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # storage blobs read plus tensor copies made, per file
_SMALL_MEMBER_BYTES = 64  # the byteorder record


class _StorageType:
    """Stands in for torch.<Name>Storage in the pickle: only its name (hence dtype) matters.

    A fresh, attribute-frozen instance per unpickler, so a crafted pickle (BUILD on the global) can alter
    neither the process-wide state nor, here, the instance itself."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    __delattr__ = __setattr__

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _read_member(archive: zipfile.ZipFile, member: str, limit: int) -> bytes:
    """The bytes of one archive member, refusing it when its header or its actual content exceeds limit."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise pickle.UnpicklingError(f"storage record {member} is missing") from None
    if info.file_size > limit:
        raise pickle.UnpicklingError(f"archive member {member} has {info.file_size} bytes, "
                                     f"more than the limit of {limit}")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)  # bounded even if the header lies about the size
    if len(data) > limit:
        raise pickle.UnpicklingError(f"archive member {member} exceeds the limit of {limit} bytes")
    return data


class _Limits:
    def __init__(self, max_elements: int, max_pickle_bytes: int, max_storage_bytes: int,
                 max_total_bytes: int) -> None:
        self.max_elements, self.max_pickle_bytes = int(max_elements), int(max_pickle_bytes)
        self.max_storage_bytes, self.max_total_bytes = int(max_storage_bytes), int(max_total_bytes)
        self.used_bytes = 0

    def spend(self, nbytes: int, what: str) -> None:
        if self.used_bytes + nbytes > self.max_total_bytes:
            raise pickle.UnpicklingError(f"{what} would take the file past its limit of "
                                         f"{self.max_total_bytes} bytes in total")
        self.used_bytes += nbytes


def _as_array(storage: Any, storage_offset: Any, size: Any, stride: Any, limits: _Limits) -> np.ndarray:
    """A C-contiguous copy of the tensor view (offset, size, stride in elements) of a storage, bounds-checked
    because as_strided would otherwise read outside the blob, and size-checked before anything is allocated."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}, not a storage record")
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
            and all(map(_is_int, size)) and all(map(_is_int, stride)) and _is_int(storage_offset)):
        raise pickle.UnpicklingError("invalid tensor layout: offset, size and stride must be integers")
    size, stride, storage_offset = tuple(map(int, size)), tuple(map(int, stride)), int(storage_offset)
    if len(size) != len(stride) or storage_offset < 0 or any(n < 0 for n in size) or len(size) > 32:
        raise pickle.UnpicklingError(f"invalid tensor layout: offset {storage_offset}, size {size}, "
                                     f"stride {stride}")
    numel = math.prod(size)  # exact (Python ints), checked before any allocation
    if numel > limits.max_elements:
        raise pickle.UnpicklingError(f"tensor of size {size} has {numel} elements, more than the limit of "
                                     f"{limits.max_elements}")
    if numel == 0:
        return np.empty(size, dtype=storage.dtype)
    # Lowest and highest element reached: negative strides go below the offset, positive ones above it.
    lowest = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if s < 0)
    highest = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if s > 0)
    if lowest < 0 or highest >= len(storage):
        raise pickle.UnpicklingError(f"tensor layout (offset {storage_offset}, size {size}, stride {stride}) "
                                     f"exceeds its storage of {len(storage)} elements")
    limits.spend(numel * storage.itemsize, f"tensor of size {size}")
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride], writeable=False)
    return np.array(view, order="C")


def _fresh_globals(limits: _Limits) -> dict[tuple[str, str], Any]:
    """The globals a pickle may name, as new objects for each file: whatever a crafted pickle does to them
    (BUILD can set attributes, e.g. a function's __defaults__) dies with that file's unpickler."""

    def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                           backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
        return _as_array(storage, storage_offset, size, stride, limits)

    def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
        return _as_array(storage, storage_offset, size, stride, limits)

    def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
        return data

    return {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,  # a built-in type: its attributes are immutable
        **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
        ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
    }


class TorchUnpickler(pickle.Unpickler):
    """Unpickles a torch.save data.pkl into numpy arrays, reading storages from the open zip archive.

    Holds all its state itself (no module-level object it hands out can be changed by the pickle)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, big_endian: bool = False,
                 limits: _Limits | None = None) -> None:
        self._limits = limits if limits is not None else _Limits(MAX_ELEMENTS, MAX_PICKLE_BYTES,
                                                                 MAX_STORAGE_BYTES, MAX_TOTAL_BYTES)
        # Read into memory (bounded) so no zip member stays open when unpickling fails.
        super().__init__(io.BytesIO(_read_member(archive, f"{prefix}data.pkl", self._limits.max_pickle_bytes)))
        self._archive = archive
        self._prefix = prefix
        self._big_endian = big_endian
        self._globals = _fresh_globals(self._limits)
        self._storage_types = {id(value) for value in self._globals.values() if isinstance(value, _StorageType)}
        self._storages: dict[str, np.ndarray] = {}  # tensors may share a storage: read each blob once

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and id(pid[1]) in self._storage_types and isinstance(pid[2], (str, int))
                and not isinstance(pid[2], bool) and _is_int(pid[4])):
            raise pickle.UnpicklingError(f"unsupported persistent id {reprlib.repr(pid)}")
        _, storage_type, key, _location, numel = pid
        key = str(key)
        if "/" in key or "\\" in key or key in ("", ".", ".."):
            raise pickle.UnpicklingError(f"invalid storage key {key!r}")
        if key not in self._storages:
            self._storages[key] = self._read_storage(storage_type, key, int(numel))
        return self._storages[key]

    def _read_storage(self, storage_type: _StorageType, key: str, numel: int) -> np.ndarray:
        member = f"{self._prefix}data/{key}"
        dtype = np.dtype(_STORAGE_DTYPES[storage_type.name])
        if self._big_endian:
            dtype = dtype.newbyteorder(">")
        if numel < 0 or numel > self._limits.max_elements:
            raise pickle.UnpicklingError(f"storage record {member} claims {numel} elements, "
                                         f"more than the limit of {self._limits.max_elements}")
        blob = _read_member(self._archive, member, self._limits.max_storage_bytes)
        if len(blob) < numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage record {member} has {len(blob)} bytes, "
                                         f"{numel} x {storage_type.name} need {numel * dtype.itemsize}")
        self._limits.spend(len(blob) + numel * max(dtype.itemsize, 4), f"storage record {member}")
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


def read_torch_file(path: str | Path, *, max_elements: int | None = None, max_pickle_bytes: int | None = None,
                    max_storage_bytes: int | None = None, max_total_bytes: int | None = None) -> Any:
    """The object saved with torch.save (zip format, torch >= 1.6), with every tensor as a numpy array.

    Every failure (not a zip, corrupt member, refused global, wrong types, layout outside its storage, a
    limit exceeded) is a DataError naming the file. Limits default to the module constants (read per call)."""
    path = Path(path)
    limits = _Limits(MAX_ELEMENTS if max_elements is None else max_elements,
                     MAX_PICKLE_BYTES if max_pickle_bytes is None else max_pickle_bytes,
                     MAX_STORAGE_BYTES if max_storage_bytes is None else max_storage_bytes,
                     MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: torch file not found") from None
    except Exception as exc:  # BadZipFile, OSError, and whatever a mangled central directory raises
        raise DataError(f"{path}: not a zip-format torch.save file ({type(exc).__name__}: {exc})") from None
    with archive:
        prefix = _archive_prefix(path, archive)
        try:
            big_endian = False
            if f"{prefix}byteorder" in archive.namelist():
                big_endian = _read_member(archive, f"{prefix}byteorder", _SMALL_MEMBER_BYTES).strip() == b"big"
            return TorchUnpickler(archive, prefix, big_endian, limits).load()
        except DataError:
            raise
        except Exception as exc:  # anything a crafted or corrupt file provokes, MemoryError and RecursionError too
            detail = str(exc) if isinstance(exc, pickle.UnpicklingError) else f"{type(exc).__name__}: {exc}"
            if len(detail) > 500:
                detail = detail[:500] + "..."
            raise DataError(f"{path}: cannot unpickle {prefix}data.pkl ({detail})") from None


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
