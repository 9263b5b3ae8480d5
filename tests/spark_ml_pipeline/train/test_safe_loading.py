"""Keras models are loaded in safe mode, and only from the .keras format: a model that would run arbitrary code
on load is refused with one clear error, wherever the project loads models (fit checkpoints, scoring)."""
import json
import os
import zipfile

import numpy as np
import pytest
from tensorflow import keras

from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.train.keras_estimator import KerasModel
from spark_ml_pipeline.train.models.loading import UnsafeModelError, load_keras_model
from spark_ml_pipeline.train.models.zoo import build_model


def lambda_model(marker):
    """A model whose Lambda layer runs Python code (here: creates ``marker``) whenever the model is rebuilt."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x, path=str(marker): (__import__("pathlib").Path(path).touch(), x)[1],
                                  name="runs_code")(inputs)
    return keras.Model(inputs, outputs)


def test_a_keras_file_with_a_lambda_layer_is_refused_before_any_code_runs(spark, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "lambda.keras"
    lambda_model(marker).save(path)
    marker.unlink()

    with pytest.raises(UnsafeModelError, match=r"refusing to load Keras model .*lambda\.keras: .*runs_code is a "
                                               r"Lambda layer \(it runs arbitrary Python code\)") as refused:
        load_keras_model(str(path))
    assert isinstance(refused.value, DataError)  # exit code 3 at a job's boundary: bad input, not retried
    # Scoring refuses it on the driver, before any Spark task: one error, not one per task.
    frame = spark.createDataFrame([([0.1, 0.2, 0.3],)], "features array<float>")
    with pytest.raises(UnsafeModelError, match="Lambda layer"):
        KerasModel(modelPath=str(path), inputShape=[3]).transform(frame)
    # Keras' own safe mode refuses it too: the second line of defence the loader always asks for.
    with pytest.raises(ValueError, match="deserialization of a Lambda layer"):
        keras.models.load_model(path, safe_mode=True)
    assert not marker.exists()


def test_a_legacy_file_named_keras_is_refused_where_keras_safe_mode_would_run_its_code(tmp_path):
    """Keras 2 (2.15, tf-keras 2.19) applies safe mode to the .keras zip only: an HDF5 file, even one named *.keras, runs its
    Lambda's bytecode on load with safe_mode=True. Only the zip format is loaded."""
    marker = tmp_path / "code-ran"
    legacy = tmp_path / "legacy.h5"
    lambda_model(marker).save(legacy)
    marker.unlink()
    disguised = tmp_path / "disguised.keras"
    os.replace(legacy, disguised)

    with pytest.raises(UnsafeModelError, match=r"disguised\.keras: not a \.keras zip; only the \.keras format"):
        load_keras_model(str(disguised))
    assert not marker.exists()
    keras.models.load_model(disguised, safe_mode=True)  # what the check prevents: the file's code runs
    assert marker.exists()

    with pytest.raises(UnsafeModelError, match="a directory"):  # SavedModel directories neither
        load_keras_model(str(tmp_path))


def test_an_architecture_naming_modules_outside_keras_is_refused(tmp_path):
    """Keras 2's safe mode imports any module a config names; the loader accepts Keras' own only."""
    path = tmp_path / "model.keras"
    build_model({"kind": "mlp", "hidden": [4]}, (3,), (1,), None).save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["kernel_initializer"] = {"module": "os", "class_name": "system", "config": {}}
    files["config.json"] = json.dumps(config).encode()
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(crafted, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)

    with pytest.raises(UnsafeModelError, match=r"crafted\.keras: .*names module 'os' \(only Keras' own"):
        load_keras_model(str(crafted))
    model = load_keras_model(str(path))  # the zoo's models use Keras' own classes only: they load
    assert model.predict(np.ones((1, 3), "float32"), verbose=0).shape == (1, 1)


def test_the_zoos_own_layers_load_and_a_config_borrowing_their_name_does_not(tmp_path):
    path = tmp_path / "fno.keras"
    model = build_model({"kind": "fno", "width": 4, "modes": 2, "blocks": 1, "projection": 4}, (8, 8, 3), (8, 8))
    model.save(path)
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(load_keras_model(str(path)).predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    spectral = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "SpectralConv2D")
    assert spectral["registered_name"] == "spark_ml_pipeline>SpectralConv2D"
    spectral["module"] = "os"  # the registered name of an allowed layer does not vouch for another module
    files["config.json"] = json.dumps(config).encode()
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(crafted, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(UnsafeModelError, match="names module 'os'"):
        load_keras_model(str(crafted))
