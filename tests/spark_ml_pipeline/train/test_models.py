"""Keras model zoo: specs validate through the discriminated union, every architecture trains briefly, saves in
the Keras format and reloads with identical predictions (no Spark)."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from spark_ml_pipeline.train.models import ModelSpec, build_model
from spark_ml_pipeline.train.models.autoencoder import decoder_of, encoder_of
from spark_ml_pipeline.train.models.loading import UnsafeModelError, load_keras_model
from spark_ml_pipeline.train.models.variational import kl_divergence, negative_elbo, posterior_of, prior_samples

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
    ("gru", {"kind": "lstm", "cell": "gru", "vocab_size": 50, "embedding_dim": 8, "units": 8, "layers": 2,
             "dropout": 0.1}, (20,), (1,), "sigmoid", sequences, "binary_crossentropy"),
    ("bigru", {"kind": "bilstm", "cell": "gru", "vocab_size": 50, "embedding_dim": 8, "units": 8},
     (20,), (1,), "sigmoid", sequences, "binary_crossentropy"),
    ("rnn", {"kind": "bilstm", "cell": "rnn", "vocab_size": 50, "embedding_dim": 8, "units": 8},
     (20,), (3,), "softmax", sequences, "sparse_categorical_crossentropy"),
    ("transformer", {"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 2, "blocks": 2,
                     "units": 16, "dropout": 0.1},
     (20,), (3,), "softmax", sequences, "sparse_categorical_crossentropy"),
    ("transformer-max", {"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 1, "blocks": 1,
                         "units": 8, "pooling": "max"}, (20,), (1,), "sigmoid", sequences, "binary_crossentropy"),
    ("transformer-field", {"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 2, "blocks": 1,
                           "units": 8, "dropout": 0.0}, (20,), (2, 3), "softmax",
     lambda: (sequences()[0], np.full((N, 2, 3), 1 / 3, "float32")), "categorical_crossentropy"),
    ("field-mlp", {"kind": "mlp", "hidden": [32]}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-cnn", {"kind": "cnn", "filters": [4, 4], "dense": [8]}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-resnet", {"kind": "resnet", "stages": [1, 1], "width": 4}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-unet", {"kind": "unet", "width": 4, "levels": 2}, (16, 16), (16, 16), None, fields, "mse"),
    ("field-fno", {"kind": "fno", "width": 4, "modes": 4, "blocks": 2, "projection": 8, "padding": 2},
     (16, 16), (16, 16), None, fields, "mse"),
    ("field-cnn-channel", {"kind": "cnn", "filters": [4], "dense": []},
     (16, 16, 1), (16, 16, 1), None, lambda: tuple(a[..., None] for a in fields()), "mse"),
    ("vae", {"kind": "vae", "variant": "conv", "filters": [4], "code_size": 4},
     (28, 28), (28, 28), None, lambda: (images()[0],) * 2, "binary_crossentropy"),
]

# Tracing a masked LSTM's train step into a graph costs ~4 s per LSTM on 2 CPU cores, so the recurrent cases
# train eagerly (same model, same save/reload check) to keep this module fast.
EAGER = {"lstm", "bilstm", "gru", "bigru", "rnn"}


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
    {"kind": "gpt"},  # not a kind
    {"kind": "lstm", "vocab_size": 10, "cell": "tcn"},  # not a cell
    {"kind": "transformer"},  # vocab_size is required
    {"kind": "transformer", "vocab_size": 50, "embedding_dim": 10, "heads": 4},  # heads must divide the width
    {"kind": "transformer", "vocab_size": 50, "pooling": "cls"},  # not a pooling
    {"kind": "transformer", "vocab_size": 50, "blocks": 0},  # out of range
    {"kind": "vae", "kl_weight": -0.1},  # out of range
    {"kind": "vae", "code_activation": "relu"},  # unknown key: the latent mean is linear
])
def test_spec_errors(data):
    with pytest.raises(ValidationError):
        SPEC.validate_python(data)


def test_spec_dispatch_and_build_errors():
    assert type(SPEC.validate_python({"kind": "bilstm", "vocab_size": 10})).__name__ == "LSTMSpec"
    assert SPEC.validate_python({"kind": "lstm", "vocab_size": 10}).cell == "lstm"  # existing configs: LSTMs
    assert type(SPEC.validate_python({"kind": "transformer", "vocab_size": 10})).__name__ == "TransformerSpec"
    with pytest.raises(ValueError, match="sequence_length"):
        build_model({"kind": "transformer", "vocab_size": 10}, (4, 4), (2,))
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


def _square_symmetry(fields, k, inverse=False):
    """Element k (bits: transpose, reflect rows, reflect columns; reflections i -> -i mod n) on (B, N, N), in
    numpy; its inverse undoes the steps in reverse order."""
    steps = [step for bit, step in enumerate((lambda f: f.swapaxes(1, 2),
                                              lambda f: np.roll(np.flip(f, 1), 1, 1),
                                              lambda f: np.roll(np.flip(f, 2), 1, 2))) if k & (1 << bit)]
    for step in (reversed(steps) if inverse else steps):
        fields = step(fields)
    return fields


def test_a_symmetric_fno_predicts_equivariantly_trains_on_one_view_and_loads_safely(tmp_path):
    from spark_ml_pipeline.train.models.loading import load_keras_model

    spec = {"kind": "fno", "width": 4, "modes": 3, "blocks": 2, "projection": 8, "symmetric": True,
            "symmetric_channels": 1}
    model = build_model(spec, (8, 8, 3), (8, 8))
    rng = np.random.default_rng(0)
    field, coordinates = rng.random((2, 8, 8), dtype=np.float32), rng.random((2, 8, 8, 2), dtype=np.float32)

    def with_field(f):
        return np.concatenate([f[..., None], coordinates], -1)

    predicted = model.predict(with_field(field), verbose=0)
    assert predicted.shape == (2, 8, 8)
    for k in range(8):  # exactly equivariant in inference: transform the field, the prediction follows
        np.testing.assert_allclose(model.predict(with_field(_square_symmetry(field, k)), verbose=0),
                                   _square_symmetry(predicted, k), atol=1e-5)
    # In training the model sees the one view it is given; its inference is the average of the 8 views' outputs,
    # each transformed back (every element here is its own inverse but the transposed reflections: undone in order).
    views = [_square_symmetry(model(with_field(_square_symmetry(field, k)), training=True).numpy(), k, inverse=True)
             for k in range(8)]
    np.testing.assert_allclose(predicted, np.mean(views, 0), atol=1e-5)
    assert not np.allclose(views[0], predicted, atol=1e-4)  # one view is not the average
    path = tmp_path / "symmetric.keras"
    model.save(path)
    np.testing.assert_allclose(load_keras_model(str(path)).predict(with_field(field), verbose=0), predicted,
                               atol=1e-6)
    assert build_model(spec, (8, 8, 3), (8, 8)).predict(np.zeros((1, 16, 16, 3), "float32"), verbose=0).shape \
        == (1, 16, 16)  # still resolution-free
    with pytest.raises(ValueError, match="symmetric=true needs a square grid"):
        build_model({**spec, "modes": 2}, (8, 4, 3), (8, 4))
    with pytest.raises(ValueError, match="symmetric_channels <= the input's 3"):
        build_model({**spec, "symmetric_channels": 4}, (8, 8, 3), (8, 8))


@pytest.mark.parametrize("kind, cell, layer_type", [("lstm", "lstm", "LSTM"), ("bilstm", "lstm", "LSTM"),
                                                    ("lstm", "gru", "GRU"), ("bilstm", "gru", "GRU"),
                                                    ("lstm", "rnn", "SimpleRNN"), ("bilstm", "rnn", "SimpleRNN")])
def test_recurrent_cells(kind, cell, layer_type):
    """``cell`` picks the layer, ``kind: bilstm`` wraps it; an LSTM keeps its layer and model names."""
    model = build_model({"kind": kind, "cell": cell, "vocab_size": 20, "embedding_dim": 4, "units": 3, "layers": 2},
                        (6,), (2,), "softmax")
    prefix = "bi" if kind == "bilstm" else ""
    assert model.name == f"{prefix}{cell}"
    for i in range(2):
        layer = model.get_layer(f"{prefix}{cell}{i}")
        inner = layer.forward_layer if kind == "bilstm" else layer
        assert type(inner).__name__ == layer_type and inner.units == 3
        assert layer.output_shape[-1] == 3 * (2 if kind == "bilstm" else 1)
    first, last = (model.get_layer(f"{prefix}{cell}{i}") for i in (0, 1))
    assert first.return_sequences and not last.return_sequences


def test_transformer_blocks_and_heads():
    model = build_model({"kind": "transformer", "vocab_size": 30, "embedding_dim": 12, "heads": 3, "blocks": 2,
                         "units": 20}, (7,), (4,), "softmax")
    attention = model.get_layer("block1_attention")
    assert isinstance(attention, keras.layers.MultiHeadAttention)
    assert (attention.get_config()["num_heads"], attention.get_config()["key_dim"]) == (3, 4)
    assert model.get_layer("block1_feed_forward").units == 20
    assert model.get_layer("position_embedding").positions.shape == (7, 12)  # one learned vector per step
    assert "block2_attention" not in {layer.name for layer in model.layers}
    assert model.get_layer("output").dtype == "float32" and model.output_shape == (None, 4)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_transformer_ignores_padding(pooling):
    """The same tokens padded to 12 and to 20 steps give the same output: padded steps are masked in attention
    (no query attends to them) and in the pooling. The longer model has the shorter one's weights, its extra
    position vectors random: any leak of a padded step would change the output (it does by ~0.5 with the
    attention mask switched off)."""
    spec = {"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 2, "blocks": 2, "units": 16,
            "dropout": 0.0, "pooling": pooling}
    short, long = build_model(spec, (12,), (3,), "softmax"), build_model(spec, (20,), (3,), "softmax")
    rng = np.random.default_rng(5)
    for a, b in zip(short.layers, long.layers):
        weights = a.get_weights()
        if a.name == "position_embedding":
            extended = rng.normal(size=(20, 8)).astype("float32")
            extended[:12] = weights[0]
            weights = [extended]
        b.set_weights(weights)
    x = rng.integers(1, 50, (5, 12)).astype("int32")
    x[0, 3:], x[1, 9:], x[4] = 0, 0, 0  # padded, longer, full length (rows 2, 3), all padding (an empty tweet)
    padded = np.concatenate([x, np.zeros((5, 8), "int32")], axis=1)
    expected = short.predict(x, verbose=0)
    np.testing.assert_allclose(long.predict(padded, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(long(padded, training=False).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(expected[4], 1 / 3, atol=1e-6)  # all padding: pooled 0, the head's bias only
    assert np.isfinite(expected).all()
    # One more real token does change the output: the mask hides padding, not tokens.
    longer = x.copy()
    longer[0, 3] = 7
    assert np.abs(short.predict(longer, verbose=0)[0] - expected[0]).max() > 1e-4


def test_transformer_loads_in_safe_mode_and_only_from_its_module(tmp_path):
    """The transformer's own layers are registered (package spark_ml_pipeline) and allowed by the safe loader,
    with the module that defines them only."""
    model = build_model({"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 2, "blocks": 1,
                         "units": 8}, (20,), (3,), "softmax")
    x, _ = sequences()
    path = tmp_path / "transformer.keras"
    model.save(path)
    np.testing.assert_allclose(load_keras_model(str(path)).predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        members = {name: archive.read(name) for name in archive.namelist()}
    own = {layer["registered_name"]: layer for layer in config["config"]["layers"]
           if (layer.get("registered_name") or "").startswith("spark_ml_pipeline>")}
    assert set(own) == {"spark_ml_pipeline>PositionEmbedding", "spark_ml_pipeline>MaskedPooling1D"}
    assert {layer["module"] for layer in own.values()} == {"spark_ml_pipeline.train.models.attention"}
    own["spark_ml_pipeline>MaskedPooling1D"]["module"] = "spark_ml_pipeline.train.models.spectral"  # not its module
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
    with pytest.raises(UnsafeModelError, match="MaskedPooling1D|masked_mean_pooling"):
        load_keras_model(str(tampered))


@pytest.mark.parametrize("variant, spec", [("dense", {"hidden": [16]}), ("conv", {"filters": [4, 8]})],
                         ids=["dense", "conv"])
def test_vae_reloads_safely_and_predicts_deterministically(variant, spec, tmp_path):
    """A VAE trains, reloads through the safe loader (its sampling layer allowed by name and module), predicts the
    reconstruction of the posterior mean (no sampling at inference), and its encoder (latent means) and decoder
    (latent -> image) come out of the reloaded model."""
    model = build_model({"kind": "vae", "variant": variant, "code_size": 3, **spec}, (28, 28))
    assert model.output_shape == (None, 28, 28) and model.output_names == ["reconstruction"]
    x, _ = images()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    assert np.isfinite(model.fit(x, x, batch_size=BATCH, epochs=1, verbose=0).history["loss"][0])
    path = tmp_path / "vae.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    own = [layer for layer in layers if (layer.get("registered_name") or "").startswith("spark_ml_pipeline>")]
    assert [(layer["registered_name"], layer["module"]) for layer in own] == [
        ("spark_ml_pipeline>GaussianSampling", "spark_ml_pipeline.train.models.variational")]
    reloaded = load_keras_model(str(path))
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)  # inference: z = z_mean
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)
    assert expected.min() >= 0.0 and expected.max() <= 1.0
    assert np.abs(model(x, training=True).numpy() - expected).max() > 1e-4  # training: z is drawn
    codes = encoder_of(reloaded)(x, training=False).numpy()
    assert codes.shape == (N, 3)
    np.testing.assert_allclose(codes, posterior_of(model)(x, training=False)[0].numpy(), atol=1e-5)
    decoder = decoder_of(reloaded)
    assert decoder.input_shape == (None, 3) and decoder.output_shape == (None, 28, 28)
    np.testing.assert_allclose(decoder(codes, training=False).numpy(), expected, atol=1e-5)
    assert prior_samples(reloaded, 5).shape == (5, 28, 28)


def test_vae_kl_term_is_in_the_losses_and_scales_with_kl_weight():
    """The sampling layer adds kl_weight x KL(q(z|x) || N(0, I)) per image (batch mean) / pixels to the losses;
    ``negative_elbo`` adds the same KL to the Bernoulli reconstruction term."""
    x, _ = images()
    kl_terms = {}
    for weight in (0.0, 1.0, 3.0):
        keras.utils.set_random_seed(0)  # the same initial weights for every kl_weight
        model = build_model({"kind": "vae", "variant": "dense", "hidden": [8], "code_size": 2, "kl_weight": weight},
                            (28, 28))
        model(x, training=False)
        assert len(model.losses) == 1
        kl_terms[weight] = float(model.losses[0])
    z_mean, z_log_var = (t.numpy() for t in posterior_of(model)(x, training=False))
    expected = kl_divergence(z_mean, z_log_var).mean() / (28 * 28)
    assert expected > 0
    np.testing.assert_allclose([kl_terms[0.0], kl_terms[1.0], kl_terms[3.0]], [0.0, expected, 3 * expected],
                               rtol=1e-4, atol=1e-9)
    elbo = negative_elbo(model, x)
    np.testing.assert_allclose(elbo["kl"], expected * 28 * 28, rtol=1e-4)
    assert elbo["negative_elbo"] == pytest.approx(elbo["reconstruction_nll"] + elbo["kl"])
    assert 0.5 * 28 * 28 < elbo["reconstruction_nll"] < 28 * 28  # about log 2 nats per pixel, untrained
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    # The loss Keras minimises: mean pixel cross-entropy + the KL term (its batch mean, the same at inference).
    loss = model.evaluate(x, x, batch_size=N, verbose=0)
    np.testing.assert_allclose(loss, keras.losses.binary_crossentropy(x, model.predict(x, verbose=0)).numpy().mean()
                               + kl_terms[3.0], rtol=1e-4)
