"""The Darcy-flow reader: the real neuraloperator files, and crafted torch.save archives (built here without
torch) for its error paths and its hardening (issue 10, item 4): no shared mutable state, every tensor bounded by
its storage blob and an element limit, bounded member reads, every failure a DataError naming the file."""
from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import time
import tracemalloc
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.darcy_surrogate import dataset
from pipelines.darcy_surrogate.dataset import darcy_dir, load_darcy, read_torch_file
from spark_ml_pipeline.runtime.errors import DataError


# --- building archives (fake torch modules let pickle emit torch's globals) -----------------------------------------------------------

class _StorageRef:
    def __init__(self, key: str, storage_class: type, numel: int) -> None:
        self.key, self.storage_class, self.numel = key, storage_class, numel


class _Tensor:
    def __init__(self, storage, offset, size, stride) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return "storage", obj.storage_class, obj.key, "cpu", obj.numel
        return None


@pytest.fixture
def fake_torch(monkeypatch):
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only pickled by reference")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage", "BoolStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_raw_zip(path: Path, pickle_bytes: bytes, blobs: dict[str, bytes] | None = None,
                  compression: int = zipfile.ZIP_STORED, byteorder: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr(f"{path.stem}/data.pkl", pickle_bytes)
        for key, blob in (blobs or {}).items():
            archive.writestr(f"{path.stem}/data/{key}", blob)
        archive.writestr(f"{path.stem}/version", "3\n")
        if byteorder:
            archive.writestr(f"{path.stem}/byteorder", byteorder)
    return path


def write_torch_zip(path: Path, obj, blobs: dict[str, bytes], compression: int = zipfile.ZIP_STORED,
                    byteorder: str | None = None) -> Path:
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump(obj)
    return write_raw_zip(path, buffer.getvalue(), blobs, compression, byteorder)


def global_then_build(module: str, name: str, state) -> bytes:
    """A pickle that names an allowed global and then BUILDs (setstate / attribute assignment) onto it."""
    state_ops = pickle.dumps(state, protocol=2)[2:-1]  # without PROTO and STOP; the GLOBAL is not memoized
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + state_ops + b"b."


def tiny_file(tmp_path: Path, fake_torch, name: str = "tiny.pt") -> Path:
    floats = _StorageRef("0", fake_torch.FloatStorage, 6)
    obj = {"t": _Tensor(floats, 0, (2, 3), (1, 2)), "m": _Tensor(_StorageRef("1", fake_torch.BoolStorage, 2), 0,
                                                                 (2,), (1,))}
    return write_torch_zip(tmp_path / name, obj, {"0": np.arange(6, dtype="<f4").tobytes(), "1": b"\x01\x00"})


def assert_tiny_loads(path: Path) -> None:
    data = read_torch_file(path)
    np.testing.assert_array_equal(data["t"], [[0, 2, 4], [1, 3, 5]])
    assert data["t"].dtype == np.float32 and data["m"].tolist() == [True, False]


def assert_data_error(path: Path, match: str | None = None, **limits) -> DataError:
    with pytest.raises(DataError, match=match) as error:
        read_torch_file(path, **limits)
    assert str(path) in str(error.value)
    return error.value


# --- shared state -------------------------------------------------------------------------------------------

ATTACKS = {
    "storage_dict": ("torch", "FloatStorage", {"dtype": None, "name": "Nope"}),
    "storage_slots": ("torch", "FloatStorage", (None, {"name": "Nope", "dtype": None})),
    "bool_storage_slots": ("torch", "BoolStorage", (None, {"name": "FloatStorage"})),
    "untyped_storage": ("torch.storage", "UntypedStorage", (None, {"name": "DoubleStorage"})),
    "rebuild_defaults": ("torch._utils", "_rebuild_tensor_v2", (None, {"__defaults__": (1, 2, 3)})),
    "rebuild_dict": ("torch._utils", "_rebuild_tensor_v2", {"__defaults__": (1,), "marker": 1}),
    "rebuild_code": ("torch._utils", "_rebuild_tensor_v2", (None, {"__code__": None})),
    "ordered_dict": ("collections", "OrderedDict", (None, {"__init__": None, "__setitem__": None})),
}


def test_crafted_file_cannot_change_shared_state(tmp_path, fake_torch):
    """Each attack BUILDs onto a global the reader hands out; whatever it does (fail or not), later loads in the
    process, of the tiny file and of the real packaged data, must be unaffected."""
    tiny = tiny_file(tmp_path, fake_torch)
    before = dict(dataset._STORAGE_DTYPES)
    for name, (module, attr, state) in ATTACKS.items():
        path = write_raw_zip(tmp_path / f"{name}.pt", global_then_build(module, attr, state))
        try:
            read_torch_file(path)
        except DataError as error:
            assert str(path) in str(error)
        assert_tiny_loads(tiny)
    # Several attacks in one process, then the same file read twice: no state carries over.
    assert_tiny_loads(tiny)
    assert dict(dataset._STORAGE_DTYPES) == before
    x, y = load_darcy("test", 16)
    assert x.shape == y.shape == (50, 16, 16)


def test_attack_inside_a_file_stays_inside_it(tmp_path, fake_torch):
    """A pickle that alters a global and then uses it in the same file only affects that file."""
    state = pickle.dumps((None, {"name": "Nope"}), protocol=2)[2:-1]
    raw = (b"\x80\x02ctorch\nFloatStorage\n" + state + b"b0.")  # BUILD, POP, STOP: returns nothing useful
    assert_data_error(write_raw_zip(tmp_path / "self.pt", raw), match="read-only|cannot unpickle")
    assert_tiny_loads(tiny_file(tmp_path, fake_torch))


# --- tensor layouts -----------------------------------------------------------------------------------------

def test_zero_stride_huge_shape_is_refused_without_allocating(tmp_path, fake_torch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    path = write_torch_zip(tmp_path / "zero.pt", {"t": _Tensor(floats, 0, (10**6, 10**6, 10**6), (0, 0, 0))},
                           {"0": bytes(16)})
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert_data_error(path, match="more than the limit")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 5 * 1024 * 1024
    # Just over a lowered limit is refused too; a legitimate broadcast within it is read.
    broadcast = write_torch_zip(tmp_path / "broadcast.pt", {"t": _Tensor(floats, 1, (3, 2), (0, 1))},
                                {"0": np.arange(4, dtype="<f4").tobytes()})
    assert_data_error(broadcast, match="6 elements, more than the limit of 5", max_elements=5)
    np.testing.assert_array_equal(read_torch_file(broadcast, max_elements=6)["t"], [[1, 2]] * 3)


def test_module_element_limit_applies_by_default(tmp_path, fake_torch, monkeypatch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    path = write_torch_zip(tmp_path / "four.pt", {"t": _Tensor(floats, 0, (4,), (1,))}, {"0": bytes(16)})
    assert read_torch_file(path)["t"].shape == (4,)
    monkeypatch.setattr(dataset, "MAX_ELEMENTS", 3)
    assert_data_error(path, match="limit of 3")


def test_storage_numel_claim_over_limit(tmp_path, fake_torch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 10**12)
    path = write_torch_zip(tmp_path / "claim.pt", {"t": _Tensor(floats, 0, (1,), (1,))}, {"0": bytes(16)})
    assert_data_error(path, match="claims 1000000000000 elements")


@pytest.mark.parametrize("offset, size, stride", [
    (4, (1,), (1,)),           # offset at the end of the blob
    (0, (5,), (1,)),           # shape beyond the blob
    (1, (2, 2), (2, 1)),       # last element at 4
    (0, (3,), (2,)),           # strided past the end
    (0, (2,), (-1,)),          # negative stride below the start
    (2, (2, 2), (-2, 2)),      # mixed: reaches 0 (ok) and 4 (outside)
])
def test_layout_outside_the_blob(tmp_path, fake_torch, offset, size, stride):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    path = write_torch_zip(tmp_path / "outside.pt", {"t": _Tensor(floats, offset, size, stride)}, {"0": bytes(16)})
    assert_data_error(path, match="exceeds its storage of 4 elements")


def test_negative_and_zero_strides_inside_the_blob(tmp_path, fake_torch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 6)
    obj = {"rev": _Tensor(floats, 5, (6,), (-1,)), "grid": _Tensor(floats, 3, (2, 2), (-3, 1)),
           "rep": _Tensor(floats, 5, (2, 2), (0, 0))}
    data = read_torch_file(write_torch_zip(tmp_path / "neg.pt", obj, {"0": np.arange(6, dtype="<f4").tobytes()}))
    np.testing.assert_array_equal(data["rev"], [5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(data["grid"], [[3, 4], [0, 1]])
    np.testing.assert_array_equal(data["rep"], [[5, 5], [5, 5]])


@pytest.mark.parametrize("args", [
    ("not a storage", 0, (1,), (1,)),
    ("STORAGE", -1, (1,), (1,)),
    ("STORAGE", 0, (2,), (1, 1)),
    ("STORAGE", 0, (-1,), (1,)),
    ("STORAGE", 0.5, (1,), (1,)),
    ("STORAGE", 0, ("1",), (1,)),
    ("STORAGE", 0, 4, 1),
    ("STORAGE", True, (1,), (1,)),
])
def test_wrong_types_in_tensor_arguments(tmp_path, fake_torch, args):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    args = tuple(floats if arg == "STORAGE" else arg for arg in args)
    path = write_torch_zip(tmp_path / "types.pt", {"t": _Tensor(*args)}, {"0": bytes(16)})
    assert_data_error(path)


@pytest.mark.parametrize("pid", [
    ("storage", "FloatStorage", "0", "cpu", 4),         # storage type given as a plain string
    ("storage", None, "0", "cpu", 4),
    ("storage", "TYPE", "0", "cpu", "4"),               # numel not an int
    ("storage", "TYPE", "../x", "cpu", 4),              # key escaping data/
    ("storage", "TYPE", "0", "cpu"),                    # too short
    "storage",
])
def test_bad_persistent_ids(tmp_path, fake_torch, pid):
    class Ref:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Ref):
                return tuple(fake_torch.FloatStorage if p == "TYPE" else p for p in pid) \
                    if isinstance(pid, tuple) else pid
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"t": Ref()})
    assert_data_error(write_raw_zip(tmp_path / "pid.pt", buffer.getvalue(), {"0": bytes(16)}))


# --- member sizes -------------------------------------------------------------------------------------------

def test_oversized_members(tmp_path, fake_torch, monkeypatch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    path = write_torch_zip(tmp_path / "big.pt", {"t": _Tensor(floats, 0, (4,), (1,))}, {"0": bytes(4096)})
    assert read_torch_file(path)["t"].shape == (4,)
    assert_data_error(path, match="big/data/0 has 4096 bytes, more than the limit of 1000",
                      max_storage_bytes=1000)
    assert_data_error(path, match="big/data.pkl has .* bytes, more than the limit of 10", max_pickle_bytes=10)
    assert_data_error(path, match="in total", max_total_bytes=100)
    monkeypatch.setattr(dataset, "MAX_STORAGE_BYTES", 1000)
    assert_data_error(path, match="more than the limit of 1000")
    monkeypatch.undo()
    monkeypatch.setattr(dataset, "MAX_PICKLE_BYTES", 10)
    with pytest.raises(DataError, match="darcy_test_16.pt: .*more than the limit of 10"):
        load_darcy("test", 16)


def test_lying_size_header_is_still_bounded(tmp_path, fake_torch):
    """The central directory claims 16 bytes for a storage that inflates to 1 MiB: the read stops at the limit."""
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    path = write_torch_zip(tmp_path / "liar.pt", {"t": _Tensor(floats, 0, (4,), (1,))}, {"0": bytes(1 << 20)},
                           compression=zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    name = b"liar/data/0"
    central = raw.index(b"PK\x01\x02")  # central directory headers: name at +46, uncompressed size at +24
    while raw[central + 46: central + 46 + len(name)] != name:
        central = raw.index(b"PK\x01\x02", central + 4)
    raw[central + 24: central + 28] = (16).to_bytes(4, "little")  # uncompressed size
    path.write_bytes(bytes(raw))
    assert zipfile.ZipFile(path).getinfo("liar/data/0").file_size == 16
    tracemalloc.start()
    try:
        error = assert_data_error(path, max_storage_bytes=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024
    assert "liar/data/0" in str(error)  # refused at the bounded read (or the zip's own CRC/size check)


# --- corrupt archives ---------------------------------------------------------------------------------------

def test_truncated_and_corrupt_archives(tmp_path, fake_torch):
    good = tiny_file(tmp_path, fake_torch, "good.pt").read_bytes()
    cases = {
        "empty.pt": b"",
        "half.pt": good[: len(good) // 2],
        "tail.pt": good[: len(good) - 10],
        "nozip.pt": b"PK\x03\x04" + bytes(100),
    }
    # A flipped byte inside the stored float blob: the zip CRC check fails.
    corrupt = bytearray(good)
    blob_at = corrupt.index(np.arange(6, dtype="<f4").tobytes())
    corrupt[blob_at + 5] ^= 0xFF
    cases["crc.pt"] = bytes(corrupt)
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert_data_error(path)


@pytest.mark.parametrize("pickle_bytes", [
    b"",                                   # empty pickle
    b"\x80\x02garbage",                    # invalid opcodes
    b"\x80\x02(",                          # truncated
    b"\x80\x02cos\nsystem\n.",              # refused global
    b"\x80\x02ctorch\nNoSuchStorage\n.",    # unknown storage type
    b"\x80\x02" + b"(" * 100_000 + b".",   # deep marks
    b"\x80\x02h\x05.",                     # memo read of nothing
])
def test_bad_pickles(tmp_path, pickle_bytes):
    assert_data_error(write_raw_zip(tmp_path / "bad.pt", pickle_bytes))


def test_wrong_archive_layout(tmp_path):
    path = tmp_path / "two.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/data.pkl", pickle.dumps({}))
        archive.writestr("b/data.pkl", pickle.dumps({}))
    assert_data_error(path, match="expected one data.pkl")


# --- the real files -----------------------------------------------------------------------------------------

def test_real_files_still_load():
    x, y = load_darcy("test", 16)
    assert x.shape == y.shape == (50, 16, 16) and x.dtype == y.dtype == np.float32
    assert np.unique(x).tolist() == [0.0, 1.0]
    raw = read_torch_file(dataset.darcy_dir() / "darcy_test_16.pt")
    assert raw["x"].dtype == np.bool_ and raw["y"].dtype == np.float32
    np.testing.assert_array_equal(raw["y"].astype(np.float32), y)
    x32, y32 = load_darcy("test", 32)
    assert x32.shape == y32.shape == (50, 32, 32)
    np.testing.assert_array_equal(y32[:, ::2, ::2], y)


# --- Darcy flow ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def darcy():
    return {(split, resolution): load_darcy(split, resolution)
            for split, resolution in [("train", 16), ("test", 16), ("test", 32)]}


@pytest.mark.parametrize("split, resolution, size", [("train", 16, 1000), ("test", 16, 50), ("test", 32, 50)])
def test_darcy_shapes_and_values(darcy, split, resolution, size):
    x, y = darcy[(split, resolution)]
    assert x.shape == y.shape == (size, resolution, resolution)
    assert x.dtype == y.dtype == np.float32
    assert np.isfinite(x).all() and np.isfinite(y).all()
    # Piecewise-constant coefficients stored as booleans: every map takes both values, and only those.
    assert np.unique(x).tolist() == [0.0, 1.0]
    assert all(np.unique(sample).size == 2 for sample in x)
    assert 0.3 < x.mean() < 0.7
    assert -1 < y.min() < 0 < 1 < y.max() < 3
    assert np.unique(y).size > 1000


def test_darcy_layout_is_spatial(darcy):
    """The files store column-major strides: read correctly, the low-resolution test set is every other point of
    the high-resolution one, and solutions are smooth (neighbours differ far less than random points)."""
    x16, y16 = darcy[("test", 16)]
    x32, y32 = darcy[("test", 32)]
    np.testing.assert_array_equal(x32[:, ::2, ::2], x16)
    np.testing.assert_array_equal(y32[:, ::2, ::2], y16)
    _, y = darcy[("train", 16)]
    neighbours = np.abs(np.diff(y, axis=1)).mean() + np.abs(np.diff(y, axis=2)).mean()
    shuffled = np.random.default_rng(0).permutation(y.reshape(len(y), -1), axis=1).reshape(y.shape)
    assert neighbours < 0.5 * (np.abs(np.diff(shuffled, axis=1)).mean() + np.abs(np.diff(shuffled, axis=2)).mean())


def test_darcy_raw_file_keys_and_dtypes():
    data = read_torch_file(darcy_dir() / "darcy_test_16.pt")
    assert set(data) == {"x", "y"}
    assert data["x"].dtype == np.bool_ and data["y"].dtype == np.float32
    assert data["x"].shape == data["y"].shape == (50, 16, 16)


def test_missing_darcy_file(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="darcy_train_32.pt: Darcy flow file not found.*neuraloperator"):
        load_darcy("train", 32)
    monkeypatch.setenv("SML_DARCY_DIR", str(tmp_path))
    with pytest.raises(DataError, match="not found") as error:
        load_darcy("test", 16)
    assert str(tmp_path / "darcy_test_16.pt") in str(error.value)
    with pytest.raises(ValueError, match="split"):
        load_darcy("val")


# A tiny torch.save-format archive built without torch: fake torch modules let pickle emit the same globals.


# --- the reader's layouts and error paths ---------------------------------------------------------------

def test_torch_unpickler_strides_offsets_and_shared_storage(tmp_path, fake_torch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 24)
    obj = collections.OrderedDict(
        transposed=_Tensor(floats, 2, (2, 3), (1, 2)),  # shares storage 0, column-major, offset 2
        strided=_Tensor(floats, 0, (4,), (6,)),
        scalar=_Tensor(_StorageRef("1", fake_torch.LongStorage, 1), 0, (), ()),
        mask=[_Tensor(_StorageRef("2", fake_torch.BoolStorage, 3), 0, (3,), (1,))],
        empty=_Tensor(_StorageRef("3", fake_torch.FloatStorage, 0), 0, (0, 5), (5, 1)),
    )
    blobs = {"0": np.arange(24, dtype="<f4").tobytes(), "1": np.array([-7], "<i8").tobytes(),
             "2": bytes([1, 0, 1]), "3": b""}
    data = read_torch_file(write_torch_zip(tmp_path / "tiny.pt", obj, blobs))
    assert list(data) == ["transposed", "strided", "scalar", "mask", "empty"]
    np.testing.assert_array_equal(data["transposed"], [[2, 4, 6], [3, 5, 7]])
    assert data["transposed"].flags.c_contiguous and data["transposed"].dtype == np.float32
    np.testing.assert_array_equal(data["strided"], [0, 6, 12, 18])
    assert data["scalar"].shape == () and data["scalar"] == -7 and data["scalar"].dtype == np.int64
    assert data["mask"][0].tolist() == [True, False, True]
    assert data["empty"].shape == (0, 5)


def test_torch_unpickler_big_endian_archive(tmp_path, fake_torch):
    obj = {"v": _Tensor(_StorageRef("0", fake_torch.FloatStorage, 3), 0, (3,), (1,))}
    blob = np.array([1.5, -2, 3], ">f4").tobytes()
    path = write_torch_zip(tmp_path / "big.pt", obj, {"0": blob}, byteorder="big")
    np.testing.assert_array_equal(read_torch_file(path)["v"], [1.5, -2, 3])


def test_torch_unpickler_rejects_bad_archives(tmp_path, fake_torch):
    floats = _StorageRef("0", fake_torch.FloatStorage, 4)
    cases = {
        "outside.pt": ({"t": _Tensor(floats, 1, (2, 2), (2, 1))}, {"0": bytes(16)}, "exceeds its storage"),
        "short.pt": ({"t": _Tensor(floats, 0, (4,), (1,))}, {"0": bytes(15)}, "has 15 bytes"),
        "unlisted.pt": ({"t": _Tensor(floats, 0, (4,), (1,))}, {}, "storage record unlisted/data/0 is missing"),
        "code.pt": ({"t": os.getcwd}, {}, "refusing to load global posix.getcwd"),
    }
    for name, (obj, blobs, message) in cases.items():
        path = write_torch_zip(tmp_path / name, obj, blobs)
        with pytest.raises(DataError, match=message) as error:
            read_torch_file(path)
        assert str(path) in str(error.value)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DataError, match="not a zip-format torch.save file"):
        read_torch_file(legacy)
    with pytest.raises(DataError, match="torch file not found"):
        read_torch_file(tmp_path / "absent.pt")
