"""Every zoo model scores through the Spark transformer exactly as in-process predict."""
import numpy as np
import pandas as pd
import pytest
from tensorflow import keras

from spark_ml_pipeline.train.keras_estimator import KerasModel
from spark_ml_pipeline.train.models.zoo import build_model

CASES = {
    "mlp": ({"kind": "mlp", "hidden": [8]}, (28, 28), (10,), "softmax", "float32"),
    "cnn": ({"kind": "cnn", "filters": [4], "dense": [8]}, (28, 28), (10,), "softmax", "float32"),
    "resnet": ({"kind": "resnet", "stages": [1, 1], "width": 4}, (28, 28), (10,), "softmax", "float32"),
    "cnn-field": ({"kind": "cnn", "filters": [4, 4], "dense": [4]}, (16, 16), (16, 16), None, "float32"),
    "resnet-field": ({"kind": "resnet", "stages": [1], "width": 4}, (16, 16), (16, 16), None, "float32"),
    "mlp-field": ({"kind": "mlp", "hidden": [8]}, (16, 16), (16, 16), None, "float32"),
    "unet-field": ({"kind": "unet", "width": 4, "levels": 2}, (16, 16, 3), (16, 16), None, "float32"),
    "fno-field": ({"kind": "fno", "width": 4, "modes": 4, "blocks": 2, "projection": 8}, (16, 16, 3), (16, 16),
                  None, "float32"),
    "lstm": ({"kind": "lstm", "vocab_size": 50, "embedding_dim": 4, "units": 4}, (12,), (3,), "softmax", "int"),
    "bilstm": ({"kind": "bilstm", "vocab_size": 50, "embedding_dim": 4, "units": 4}, (12,), (3,), "softmax", "int"),
    # The other cells score through the same path; a GRU costs as much as the BiLSTM above (~20 s), a SimpleRNN ~2 s.
    "rnn": ({"kind": "lstm", "cell": "rnn", "vocab_size": 50, "embedding_dim": 4, "units": 4}, (12,), (3,), "softmax",
            "int"),
    "transformer": ({"kind": "transformer", "vocab_size": 50, "embedding_dim": 8, "heads": 2, "blocks": 2,
                     "units": 8}, (12,), (3,), "softmax", "int"),
    "autoencoder": ({"kind": "autoencoder", "variant": "conv", "filters": [4], "code_size": 4}, (28, 28), None,
                    None, "float32"),
    # Scored as in-process predict: the sampling layer returns the posterior mean at inference.
    "vae": ({"kind": "vae", "variant": "conv", "filters": [4], "code_size": 4}, (28, 28), None, None, "float32"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_transformer_matches_predict(spark, tmp_path, name):
    spec, input_shape, output_shape, activation, dtype = CASES[name]
    keras.utils.set_random_seed(0)
    model = build_model(spec, input_shape, output_shape, activation)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    rng = np.random.default_rng(1)
    rows = 40
    size = int(np.prod(input_shape))
    inputs = (rng.integers(0, 50, size=(rows, size)) if dtype == "int" else rng.random((rows, size))).astype("float32")
    if dtype == "int":  # token ids post-padded with 0 as the text features pad them; the first row all padding
        inputs[np.arange(size)[None, :] >= rng.integers(0, size + 1, rows)[:, None]] = 0
        inputs[0] = 0
    frame = spark.createDataFrame(pd.DataFrame({"row_id": np.arange(rows), "features": list(inputs)}),
                                  "row_id long, features array<float>")
    scored = KerasModel(modelPath=path, inputShape=list(input_shape)).transform(frame).orderBy("row_id").toPandas()
    expected = keras.models.load_model(path).predict(inputs.reshape((rows, *input_shape)), verbose=0)
    actual = np.stack(scored["prediction"].to_numpy())
    np.testing.assert_allclose(actual, expected.reshape(rows, -1), rtol=1e-4, atol=1e-5)


def test_a_saved_keras_model_carries_its_file_and_scores_the_same(spark, tmp_path):
    """KerasModel.save copies the Keras file into the saved directory; loading needs nothing else."""
    import shutil

    from pyspark.ml import PipelineModel

    source = tmp_path / "source.keras"
    build_model({"kind": "mlp", "hidden": [4]}, (3,), (2,), None).save(source)
    rows = spark.createDataFrame([([0.1, 0.2, 0.3],), ([1.0, -1.0, 0.5],)], "features array<float>")
    model = PipelineModel(stages=[KerasModel(modelPath=str(source), inputShape=[3], batchSize=8)])
    expected = [r["prediction"] for r in model.transform(rows).collect()]
    model.save(str(tmp_path / "saved"))
    source.unlink()
    shutil.move(tmp_path / "saved", tmp_path / "moved")  # self-contained: it works from anywhere
    loaded = PipelineModel.load(str(tmp_path / "moved"))
    assert loaded.stages[0].getOrDefault("inputShape") == [3]
    np.testing.assert_allclose([r["prediction"] for r in loaded.transform(rows).collect()], expected, rtol=1e-6)
