"""Keras model zoo: specs validate through the discriminated union, every architecture trains briefly, saves in
the Keras format and reloads with identical predictions (no Spark)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from spark_ml_pipeline.train.models import ModelSpec, build_model, encoder_of

keras = pytest.importorskip("tensorflow").keras

N, BATCH = 64, 32
SPEC = TypeAdapter(ModelSpec)


@pytest.fixture(autouse=True)
def _seed():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def images(shape=(28, 28)):
    rng = np.random.default_rng(0)
    return rng.random((N,) + shape, dtype=np.float32), rng.integers(0, 10, N)


def fields():
    """16x16 coefficient map -> 16x16 'solution' (a smooth function of the map, enough to learn from)."""
    rng = np.random.default_rng(1)
    x = rng.random((N, 16, 16), dtype=np.float32)
    y = (x + np.roll(x, 1, axis=1) + np.roll(x, 1, axis=2)) / 3
    return x, y.astype(np.float32)


def sequences(length=20, vocab=50):
    """Token ids in [1, vocab) (1 = out-of-vocabulary), post-padded with 0 to ``length``."""
    rng = np.random.default_rng(2)
    x = rng.integers(1, vocab, (N, length)).astype(np.int32)
    lengths = rng.integers(3, length + 1, N)
    x[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return x, rng.integers(0, 2, (N, 1)).astype(np.float32)


def fit_save_reload(model, x, y, loss, tmp_path, run_eagerly=False):
    """One short epoch, then save/reload in the Keras format; reloaded predictions must match."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=run_eagerly)
    history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)  # inference only
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), expected, atol=1e-5)
    return reloaded, expected


# id, spec, input shape, output shape, output activation, data, loss
CASES = [
    ("mlp", {"kind": "mlp", "hidden": [16, 8], "dropout": 0.1, "batch_norm": True},
     (28, 28), (10,), "softmax", images, "sparse_categorical_crossentropy"),
    ("cnn", {"kind": "cnn", "filters": [4, 8], "convs_per_block": 2, "dense": [16], "dropout": 0.2},
     (28, 28), (10,), "softmax", images, "sparse_categorical_crossentropy"),
    ("cnn-channels", {"kind": "cnn", "filters": [4], "dense": []},
     (28, 28, 1), (10,), "softmax", lambda: images((28, 28, 1)), "sparse_categorical_crossentropy"),
    ("resnet", {"kind": "resnet", "stages": [1, 1], "width": 4, "dropout": 0.1},
     (28, 28), (10,), "softmax", images, "sparse_categorical_crossentropy"),
    ("lstm", {"kind": "lstm", "vocab_size": 50, "embedding_dim": 8, "units": 8, "layers": 2, "dropout": 0.1},
     (20,), (1,), "sigmoid", sequences, "binary_crossentropy"),
    ("bilstm", {"kind": "bilstm", "vocab_size": 50, "embedding_dim": 8, "units": 8},
     (20,), (1,), "sigmoid", sequences, "binary_crossentropy"),
    ("field-mlp", {"kind": "mlp", "hidden": [32]}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-cnn", {"kind": "cnn", "filters": [4, 4], "dense": [8]}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-resnet", {"kind": "resnet", "stages": [1, 1], "width": 4}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-unet", {"kind": "unet", "width": 4, "levels": 2}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-fno", {"kind": "fno", "width": 4, "modes": 4, "blocks": 2, "projection": 8, "padding": 2},
     (16, 16), (16, 16), None, fields, "mse"),
    ("field-cnn-channel", {"kind": "cnn", "filters": [4], "dense": []},
     (16, 16, 1), (16, 16, 1), None, lambda: tuple(a[..., None] for a in fields()), "mse"),
]

# Tracing a masked LSTM's train step into a graph costs ~4 s per LSTM on 2 CPU cores, so the recurrent cases
# train eagerly (same model, same save/reload check) to keep this module fast.
EAGER = {"lstm", "bilstm"}


@pytest.mark.parametrize("spec, input_shape, output_shape, activation, data, loss, eager",
                         [case[1:] + (case[0] in EAGER,) for case in CASES], ids=[case[0] for case in CASES])
def test_train_save_reload(spec, input_shape, output_shape, activation, data, loss, eager, tmp_path):
    model = build_model(SPEC.validate_python(spec), input_shape, output_shape, activation)
    assert model.output_shape == (None,) + output_shape
    x, y = data()
    _, predictions = fit_save_reload(model, x, y, loss, tmp_path, run_eagerly=eager)
    assert predictions.shape == (N,) + output_shape
    if activation == "softmax":
        np.testing.assert_allclose(predictions.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["cnn", "resnet"])
def test_field_models_are_fully_convolutional(kind):
    model = build_model({"kind": kind, "filters": [4]} if kind == "cnn" else {"kind": kind, "stages": [1, 1],
                                                                              "width": 4}, (16, 16), (16, 16))
    types = {type(layer).__name__ for layer in model.layers}
    assert not types & {"Flatten", "MaxPooling2D", "GlobalAveragePooling2D", "Dense"}
    assert all(layer.strides == (1, 1) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert model.get_layer("head").kernel_size == (1, 1)
    # explicitly opting out gives the flatten/pool + Dense + Reshape head instead
    spec = {"kind": "cnn", "filters": [4], "dense": [], "fully_convolutional": False}
    assert isinstance(build_model(spec, (16, 16), (16, 16)).get_layer("head"), keras.layers.Dense)


def test_resnet_shortcuts():
    stages = [2, 2, 1]
    model = build_model({"kind": "resnet", "stages": stages, "width": 4}, (28, 28), (10,), "softmax")
    projections = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
                   and layer.kernel_size == (1, 1) and layer.strides == (2, 2)]
    assert len(projections) == len(stages) - 1
    for i, blocks in enumerate(stages):
        assert model.get_layer(f"stage{i}_block0_conv1").output_shape[-1] == 4 * 2 ** i  # width doubles
        for j in range(blocks):
            name = f"stage{i}_block{j}"
            block_input = model.get_layer(f"{name}_conv1").input
            add_inputs = model.get_layer(f"{name}_add").input
            if i > 0 and j == 0:  # stage change: 1x1 stride-2 projection of the block input
                shortcut = model.get_layer(f"{name}_shortcut")
                assert shortcut in projections and shortcut.input is block_input
                assert all(t is not block_input for t in add_inputs)
            else:  # identity: the block input itself is added
                assert any(t is block_input for t in add_inputs)
                assert f"{name}_shortcut" not in {layer.name for layer in model.layers}


@pytest.mark.parametrize("variant, spec", [("dense", {"hidden": [32, 16]}), ("conv", {"filters": [4, 8]})],
                         ids=["dense", "conv"])
def test_autoencoder_and_reloaded_encoder(variant, spec, tmp_path):
    spec = SPEC.validate_python({"kind": "autoencoder", "variant": variant, "code_size": 6, **spec})
    model = build_model(spec, (28, 28))
    assert model.output_shape == (None, 28, 28)
    x, _ = images()
    reloaded, reconstruction = fit_save_reload(model, x, x, "binary_crossentropy", tmp_path)
    assert reconstruction.min() >= 0.0 and reconstruction.max() <= 1.0  # sigmoid output
    codes = encoder_of(reloaded)(x, training=False).numpy()
    assert codes.shape == (N, 6)
    np.testing.assert_allclose(codes, encoder_of(model)(x, training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("input_shape", [(28, 28), (28, 28, 1), (30, 20, 3)])
def test_conv_autoencoder_shapes(input_shape):
    """Three stride-2 stages take 28 -> 4 and back to 32: the decoder crops to the input's H x W."""
    model = build_model({"kind": "autoencoder", "variant": "conv", "filters": [2, 2, 2], "code_size": 3},
                        input_shape)
    assert model.output_shape == (None,) + input_shape
    assert encoder_of(model).output_shape == (None, 3)


@pytest.mark.parametrize("data", [
    {"kind": "mlp", "hiden": [8]},  # unknown key
    {"kind": "autoencoder", "code_size": 4, "extra": True},  # unknown key
    {"kind": "mlp", "hidden": "wide"},  # wrong type
    {"kind": "lstm", "vocab_size": "many"},  # wrong type
    {"kind": "resnet", "stages": [2, 2], "width": [16]},  # wrong type
    {"kind": "lstm"},  # vocab_size is required
    {"kind": "cnn", "dropout": 1.5},  # out of range
    {"kind": "autoencoder", "variant": "sparse"},  # not a variant
    {"kind": "transformer"},  # not a kind
])
def test_spec_errors(data):
    with pytest.raises(ValidationError):
        SPEC.validate_python(data)


def test_spec_dispatch_and_build_errors():
    assert type(SPEC.validate_python({"kind": "bilstm", "vocab_size": 10})).__name__ == "LSTMSpec"
    with pytest.raises(ValueError, match="fully_convolutional"):
        build_model({"kind": "cnn", "fully_convolutional": True}, (28, 28), (10,))
    with pytest.raises(ValueError, match="output_shape is required"):
        build_model({"kind": "mlp"}, (28, 28))
    with pytest.raises(ValueError, match="reconstructs"):
        build_model({"kind": "autoencoder"}, (28, 28), (10,))
    with pytest.raises(ValueError, match="input_shape"):
        build_model({"kind": "resnet"}, (784,), (10,))


def test_specs_validate_without_tensorflow():
    code = ("import sys; from spark_ml_pipeline.train.models import parse_spec; parse_spec({'kind': 'mlp'}); "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unet_halves_the_grid_per_level_and_rejects_grids_it_cannot_halve():
    model = build_model({"kind": "unet", "width": 4, "levels": 3}, (16, 16, 3), (16, 16))
    assert model.get_layer("bottleneck_0_conv").output.shape[1:3] == (2, 2)  # global view at the bottleneck
    assert model.get_layer("up0_skip").output.shape[1:] == (16, 16, 8)  # decoder 4 + encoder skip 4
    with pytest.raises(ValueError, match="divisible by 8"):
        build_model({"kind": "unet", "levels": 3}, (12, 12), (12, 12))
    with pytest.raises(ValueError, match="predicts a field on its input's grid"):
        build_model({"kind": "unet", "levels": 1}, (16, 16), (10,))


def test_fno_weights_are_grid_free_and_its_spectral_layer_commutes_with_resampling():
    """The same FNO scores a 32x32 grid, and a spectral convolution of a band-limited periodic field computed on
    32x32 and subsampled equals the one computed on 16x16: what makes resolution transfer work."""
    model = build_model({"kind": "fno", "width": 4, "modes": 4, "blocks": 2, "projection": 8}, (16, 16, 3), (16, 16))
    assert model.input_shape == (None, None, None, 3)
    assert model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape == (2, 32, 32)
    spectral = model.get_layer("block0_spectral")
    assert not np.allclose(spectral.real.numpy(), spectral.imag.numpy())  # two initial draws, not one twice

    def field(n):
        grid = np.arange(n) / n
        rows, cols = np.meshgrid(grid, grid, indexing="ij")
        channels = [np.sin(2 * np.pi * (rows + 2 * cols)) + np.cos(2 * np.pi * 3 * rows) * (c + 1) for c in range(4)]
        return np.stack(channels, -1)[None].astype("float32")

    coarse = spectral(field(16)).numpy()
    fine = spectral(field(32)).numpy()
    np.testing.assert_allclose(fine[:, ::2, ::2], coarse, atol=1e-5)
    assert np.abs(coarse).max() > 1e-3  # not trivially zero
    with pytest.raises(ValueError, match="modes=9 needs"):
        build_model({"kind": "fno", "modes": 9}, (16, 16, 3), (16, 16))
    with pytest.raises(ValueError, match="maps a field to a field"):
        build_model({"kind": "fno"}, (16, 16, 3), (10,))
