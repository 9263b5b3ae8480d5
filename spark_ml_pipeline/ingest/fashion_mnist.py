"""The Fashion-MNIST data set: the IDX files of the Debian package dataset-fashion-mnist, ingested once into
the store as Parquet (row_id, label, pixels) and read from there by Spark, and its class names.

Read by the ``fashion_mnist`` classifier and the ``fashion_autoencoder`` and ``fashion_gan`` pipelines: the data
set is stored under ``fashion_mnist`` whichever of them ingested it first.

IDX layout: two zero bytes, a dtype code byte, the number of dimensions, one big-endian uint32 per
dimension, then the values in C order and big-endian. The Debian files are gzipped.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.files import local_file_stats
from spark_ml_pipeline.ingest.if_absent import ensure_dataset
from spark_ml_pipeline.runtime.config_models import StoreConfig
from spark_ml_pipeline.runtime.errors import DataError

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
ROOT_ENV = "SML_FASHION_MNIST_DIR"
DEBIAN_PACKAGE = "dataset-fashion-mnist"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGE_SIZE = 28

DATASET = "fashion_mnist"  # the store's name for it, whichever pipeline ingests it
SPLITS = ("train", "test")
SCHEMA = "row_id long, label int, pixels array<smallint>"

_IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped or plain), in native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, no complete header)")
    zeros, code, ndim = struct.unpack(">HBB", raw[:4])
    if zeros != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{raw[:4].hex()})")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX file (header declares {ndim} dimensions, file has {len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = _IDX_DTYPES[code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "trailing bytes in"
        raise DataError(f"{path}: {problem} IDX file (shape {shape} of {dtype.name} needs {expected} bytes, "
                        f"found {len(raw)})")
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in native order


def default_root() -> Path:
    """$SML_FASHION_MNIST_DIR or the Debian package's directory, read at call time so tests can override it."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _find_file(root: Path, name: str) -> Path:
    """The gzipped file, or else a plain one with the same name minus .gz."""
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root / name}.gz: Fashion-MNIST file not found (the Debian package {DEBIAN_PACKAGE} "
                    f"provides it in {DEFAULT_ROOT}; or set {ROOT_ENV} to a directory holding the IDX files)")


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 in 0..9 of the "train" (60k) or "test" (10k) split."""
    if split not in _SPLIT_PREFIXES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_PREFIXES)}, got {split!r}")
    directory = Path(root) if root is not None else default_root()
    prefix = _SPLIT_PREFIXES[split]
    images_path = _find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{images_path}: expected uint8 images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                        f"found {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), found {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    if len(labels) and labels.max() >= len(CLASS_NAMES):
        raise DataError(f"{labels_path}: label {labels.max()} out of range 0..{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64)


# --- in the store ------------------------------------------------------------------------------------------

def raw_location(store: StoreConfig, split: str) -> str:
    return store.data(DATASET, "raw", split)


def input_files() -> list[tuple[str, int, int]]:
    return local_file_stats(p for p in default_root().iterdir() if p.is_file())


def ingest_fashion_mnist(spark: SparkSession, store: StoreConfig) -> dict[str, int]:
    """Write each split to Parquet unless it is already there (idempotent); returns row counts."""
    def build(split: str):
        images, labels = load_fashion_mnist(split)
        frame = pd.DataFrame({"row_id": range(len(labels)), "label": labels.astype("int32"),
                              "pixels": list(images.reshape(len(images), -1).astype("int16"))})
        return spark.createDataFrame(frame, SCHEMA).repartition(4)

    return {split: ensure_dataset(spark, raw_location(store, split), lambda split=split: build(split)).count()
            for split in SPLITS}


def read_images(spark: SparkSession, store: StoreConfig, split: str, limit: int | None) -> DataFrame:
    """Ingested images (row_id, label, pixels), the first ``limit`` rows when given."""
    df = spark.read.parquet(raw_location(store, split))
    return df.where(F.col("row_id") < limit) if limit else df
