"""Probes of the Darcy surrogate outside Spark: how well a zoo model fits, and whether the data are aligned.

    .venv/bin/python bench/darcy_probe.py fit [--model unet|fno|resnet|cnn] [--width 32] [--epochs 30]
        [--train 900] [--loss mse|relative_l2|relative_h1] [--lr 2e-3] [--batch 16] [--threads 1]
        [--augment dihedral [--augment-channels 1]] [--symmetric]
    .venv/bin/python bench/darcy_probe.py orientation
    .venv/bin/python bench/darcy_probe.py symmetry

``fit`` trains one zoo model in-process (grid-coordinate channels, Adam with a cosine schedule, the pipeline's
losses) on the first ``--train`` training fields and prints train and test relative L2 (and, for the FNO, the
32x32 test set at its own resolution: trained on 16x16); a small
``--train`` (e.g. 100) asks whether the model can fit the training fields at all. ``--augment`` draws the
product's training augmentation (:mod:`spark_ml_pipeline.train.augmentation`) over the batches; ``--symmetric``
builds the FNO with ``symmetric: true`` and also prints the one-view (training-mode) figures beside the
8-view average. ``orientation`` fits a shared-weight local linear model (7x7 coefficient patch -> solution
value) to the coefficient map as loaded and transposed/flipped; the loaded orientation should explain the most.
``symmetry`` asks whether the data have the square's symmetries: the same local linear model (plus position
terms) fitted to the fields joined by their transposed / reflected copies explains as much as on the fields
alone when the symmetry holds, less when it does not (a plain flip, which moves the boundary by one point).
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
    n, side = len(x), x.shape[1]
    grid = np.linspace(0, 1, side, dtype="float32")
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    return np.stack([x, np.broadcast_to(rows, (n, side, side)), np.broadcast_to(cols, (n, side, side))], -1)


def relative_l2(prediction: np.ndarray, target: np.ndarray) -> float:
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    return float(np.mean(np.linalg.norm(flat(prediction - target), axis=1) / np.linalg.norm(flat(target), axis=1)))


def fit(args) -> None:
    import tensorflow as tf
    from tensorflow import keras

    from pipelines.darcy_surrogate.dataset import load_darcy
    from spark_ml_pipeline.train.augmentation import augmenter
    from spark_ml_pipeline.train.losses import resolve_loss
    from spark_ml_pipeline.train.models.architecture import architecture_of
    from spark_ml_pipeline.train.models.zoo import build_model

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    x, y = load_darcy("train", SIDE)
    test_x, test_y = load_darcy("test", SIDE)
    train_x, train_y = with_coordinates(x[:args.train]), y[:args.train]
    specs = {"unet": {"kind": "unet", "width": args.width, "levels": 3},
             "resnet": {"kind": "resnet", "stages": [2, 2], "width": args.width},
             "cnn": {"kind": "cnn", "filters": [args.width] * 4, "dense": [64]},
             "fno": {"kind": "fno", "width": args.width, "modes": args.modes, "blocks": 4, "padding": args.padding}}
    if args.symmetric:
        specs["fno"].update(symmetric=True, symmetric_channels=args.augment_channels)
    model = build_model(specs[args.model], (SIDE, SIDE, 3), (SIDE, SIDE))
    steps = args.epochs * max(1, len(train_x) // args.batch)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, steps)),
                  resolve_loss(args.loss))
    data = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(len(train_x), seed=0)
    data = data.batch(args.batch, drop_remainder=True)
    augment = augmenter(args.augment, (SIDE, SIDE, 3), (SIDE, SIDE), seed=0, channels=args.augment_channels)
    if augment is not None:
        data = data.map(augment)
    started = time.time()
    model.fit(data, epochs=args.epochs, verbose=0)
    print(f"{args.model} width {args.width}, {args.epochs} epochs on {len(train_x)} fields "
          f"({model.count_params():,} parameters, {time.time() - started:.0f} s): "
          f"train relative L2 {relative_l2(model.predict(train_x, verbose=0), train_y):.4f}, "
          f"test {relative_l2(model.predict(with_coordinates(test_x), verbose=0), test_y):.4f}"
          f" ({args.loss}, lr {args.lr}, batch {args.batch}, augment {args.augment}"
          f"{'' if args.augment_channels is None else f' of {args.augment_channels} channel(s)'}"
          f"{', symmetric' if args.symmetric else ''})")
    fine_x, fine_y = load_darcy("test", 2 * SIDE)
    if architecture_of(specs[args.model]["kind"]).resolution_free:
        fine = relative_l2(model.predict(with_coordinates(fine_x), verbose=0), fine_y)
        print(f"  32x32 test set at its own resolution: {fine:.4f}")
    if args.symmetric:  # the same weights, one view (training mode: no averaging)
        def one_view(x):
            return np.concatenate([model(x[i:i + 64], training=True).numpy() for i in range(0, len(x), 64)])

        print(f"  one view: test {relative_l2(one_view(with_coordinates(test_x)), test_y):.4f}, 32x32 at its "
              f"own resolution {relative_l2(one_view(with_coordinates(fine_x)), fine_y):.4f}")


def local_linear_r2(x: np.ndarray, y: np.ndarray, positions: list[np.ndarray], k: int = 7) -> float:
    """R2 of a shared-weight linear model of each solution value from the k x k coefficient patch around it (zero
    padded) plus the given (H, W) position terms and a constant: how much of ``y`` the local ``x`` explains."""
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    patches = np.stack([padded[:, i:i + SIDE, j:j + SIDE] for i in range(k) for j in range(k)], -1)
    where = [np.broadcast_to(p, x.shape).reshape(-1, 1) for p in positions]
    features = np.concatenate([patches.reshape(-1, k * k), *where, np.ones((y.size, 1))], 1)
    target = y.reshape(-1)
    weights, *_ = np.linalg.lstsq(features, target, rcond=None)
    residual = target - features @ weights
    return float(1 - residual.var() / target.var())


def _grid() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0, 1, SIDE)
    return np.meshgrid(grid, grid, indexing="ij")


def orientation(_args) -> None:
    from pipelines.darcy_surrogate.dataset import load_darcy

    x, y = load_darcy("train", SIDE)
    rows, cols = _grid()
    bump = [np.sin(np.pi * rows) * np.sin(np.pi * cols)]
    for name, variant in (("as loaded", x), ("transposed", x.transpose(0, 2, 1)), ("flipped rows", x[:, ::-1]),
                          ("flipped columns", x[:, :, ::-1]), ("rotated 180", x[:, ::-1, ::-1])):
        print(f"{name:16s} local linear R2 {local_linear_r2(variant, y, bump):.3f}")


def symmetry(_args) -> None:
    from pipelines.darcy_surrogate.dataset import load_darcy

    x, y = load_darcy("train", SIDE)
    rows, cols = _grid()
    positions = [rows, cols, rows * cols, rows ** 2, cols ** 2, np.sin(np.pi * rows) * np.sin(np.pi * cols)]

    def periodic(f, axis):  # i -> -i (mod n): the product's reflection
        return np.roll(np.flip(f, axis), 1, axis)

    print(f"{'fields alone':34s} local linear R2 {local_linear_r2(x, y, positions):.4f}")
    for name, op in (("+ transposed", lambda f: f.transpose(0, 2, 1)),
                     ("+ rows reflected i -> -i mod n", lambda f: periodic(f, 1)),
                     ("+ columns reflected i -> -i mod n", lambda f: periodic(f, 2)),
                     ("+ rows flipped i -> n-1-i", lambda f: np.flip(f, 1)),
                     ("+ columns flipped i -> n-1-i", lambda f: np.flip(f, 2))):
        joined = local_linear_r2(np.concatenate([x, op(x)]), np.concatenate([y, op(y)]), positions)
        print(f"{name:34s} local linear R2 {joined:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["fit", "orientation", "symmetry"])
    parser.add_argument("--model", default="unet", choices=["unet", "resnet", "cnn", "fno"])
    parser.add_argument("--loss", default="mse")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", type=int, default=8)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train", type=int, default=900)
    parser.add_argument("--augment", default="none", choices=["none", "dihedral"])
    parser.add_argument("--augment-channels", type=int, default=None, help="dihedral: input channels that move")
    parser.add_argument("--symmetric", action="store_true", help="fno: predictions averaged over 8 symmetries")
    args = parser.parse_args()
    {"fit": fit, "orientation": orientation, "symmetry": symmetry}[args.probe](args)


if __name__ == "__main__":
    main()
