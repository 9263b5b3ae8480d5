"""Probes of the Darcy surrogate outside Spark: how well a zoo model fits, and whether the data are aligned.

    .venv/bin/python bench/darcy_probe.py fit [--model unet] [--width 32] [--epochs 30] [--train 900]
    .venv/bin/python bench/darcy_probe.py orientation

``fit`` trains one zoo model in-process (1 thread, grid-coordinate channels, Adam with a cosine schedule,
batch 16) on the first ``--train`` training fields and prints train and test relative L2; a small
``--train`` (e.g. 100) asks whether the model can fit the training fields at all. ``orientation`` fits a
shared-weight local linear model (7x7 coefficient patch -> solution value) to the coefficient map as
loaded and transposed/flipped; the loaded orientation should explain the most.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIDE = 16


def with_coordinates(x: np.ndarray) -> np.ndarray:
    grid = np.linspace(0, 1, SIDE, dtype="float32")
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    n = len(x)
    return np.stack([x, np.broadcast_to(rows, (n, SIDE, SIDE)), np.broadcast_to(cols, (n, SIDE, SIDE))], -1)


def relative_l2(prediction: np.ndarray, target: np.ndarray) -> float:
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    return float(np.mean(np.linalg.norm(flat(prediction - target), axis=1) / np.linalg.norm(flat(target), axis=1)))


def fit(args) -> None:
    import tensorflow as tf
    from tensorflow import keras

    from pipelines.darcy_surrogate.dataset import load_darcy
    from spark_ml_pipeline.train.models.zoo import build_model

    tf.config.threading.set_intra_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    x, y = load_darcy("train", SIDE)
    test_x, test_y = load_darcy("test", SIDE)
    train_x, train_y = with_coordinates(x[:args.train]), y[:args.train]
    specs = {"unet": {"kind": "unet", "width": args.width, "levels": 3},
             "resnet": {"kind": "resnet", "stages": [2, 2], "width": args.width},
             "cnn": {"kind": "cnn", "filters": [args.width] * 4, "dense": [64]}}
    model = build_model(specs[args.model], (SIDE, SIDE, 3), (SIDE, SIDE))
    steps = args.epochs * max(1, len(train_x) // 16)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)), "mse")
    started = time.time()
    model.fit(train_x, train_y, batch_size=16, epochs=args.epochs, verbose=0)
    print(f"{args.model} width {args.width}, {args.epochs} epochs on {len(train_x)} fields "
          f"({model.count_params():,} parameters, {time.time() - started:.0f} s): "
          f"train relative L2 {relative_l2(model.predict(train_x, verbose=0), train_y):.4f}, "
          f"test {relative_l2(model.predict(with_coordinates(test_x), verbose=0), test_y):.4f}")


def orientation(_args) -> None:
    from pipelines.darcy_surrogate.dataset import load_darcy

    x, y = load_darcy("train", SIDE)
    k, pad = 7, 3
    grid = np.linspace(0, 1, SIDE)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    bump = np.broadcast_to(np.sin(np.pi * rows) * np.sin(np.pi * cols), x.shape).reshape(-1, 1)
    for name, variant in (("as loaded", x), ("transposed", x.transpose(0, 2, 1)), ("flipped rows", x[:, ::-1]),
                          ("flipped columns", x[:, :, ::-1]), ("rotated 180", x[:, ::-1, ::-1])):
        padded = np.pad(variant, ((0, 0), (pad, pad), (pad, pad)))
        patches = np.stack([padded[:, i:i + SIDE, j:j + SIDE] for i in range(k) for j in range(k)], -1)
        features = np.concatenate([patches.reshape(-1, k * k), bump, np.ones((bump.shape[0], 1))], 1)
        target = y.reshape(-1)
        weights, *_ = np.linalg.lstsq(features, target, rcond=None)
        residual = target - features @ weights
        print(f"{name:16s} local linear R2 {1 - residual.var() / target.var():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["fit", "orientation"])
    parser.add_argument("--model", default="unet", choices=["unet", "resnet", "cnn"])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train", type=int, default=900)
    args = parser.parse_args()
    {"fit": fit, "orientation": orientation}[args.probe](args)


if __name__ == "__main__":
    main()
