"""The Fashion-MNIST loader against the Debian package's IDX files, plus hand-made broken files. No Spark."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from spark_ml_pipeline.ingest.fashion_mnist import CLASS_NAMES, default_root, load_fashion_mnist, read_idx
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
