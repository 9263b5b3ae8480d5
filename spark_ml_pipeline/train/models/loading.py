"""The one way Keras models are loaded (fit checkpoints, the fitted model, scoring): ``.keras`` files in safe mode.

``keras.models.load_model(path, safe_mode=True)`` refuses a Lambda layer's Python bytecode, but only for the
``.keras`` zip format: a legacy HDF5 file or SavedModel directory (even one named ``*.keras``) is loaded without
it. And in Keras 2 (2.15, tf-keras 2.19) safe mode still resolves any ``module`` a config names
(``importlib.import_module``), so a crafted config can import modules and make a layer call functions outside
Keras. Before Keras reads anything, :func:`check_keras_file` therefore requires a ``.keras`` zip whose
architecture names Keras modules only and has no layer that calls code by reference (``Lambda``, ``TFOpLambda``,
``SlicingOpLambda``). The zoo builds from
built-in Keras layers plus the own layers its architectures declare (:mod:`.architecture`, allowed here by their
registered names, each only with the module that defines it), so its models always pass; any other custom layer is
refused.

Models are loaded with ``compile=False`` (inference and resumed fits recompile): the saved compile config,
which names the trainer's Horovod optimizer, is never deserialized, so it is not checked.
"""
from __future__ import annotations

import json
import os
import zipfile

from spark_ml_pipeline.runtime.errors import DataError
from spark_ml_pipeline.train.models.architecture import architectures
from spark_ml_pipeline.train.models.own_layers import OwnLayers

KERAS_SUFFIX = ".keras"
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})


class UnsafeModelError(DataError):
    """A model file that is not loaded: not a ``.keras`` zip, or it would run code from outside Keras."""


def _keras_module(module: str) -> bool:
    # tf_keras: the tf-keras package (Keras 2 on TensorFlow 2.16+, TF_USE_LEGACY_KERAS=1) records its own modules.
    return any(module == root or module.startswith(root + ".") for root in ("keras", "tf_keras"))


def _declared_own_layers() -> list[OwnLayers]:
    """The own layers of every declared architecture, once each."""
    return list(dict.fromkeys(declared.own_layers for declared in architectures().values() if declared.own_layers))


def _refusals(node, own_layers: dict[str, str], where: str = ""):
    """What makes a ``config.json`` architecture unsafe: (place, reason) pairs. ``own_layers``: the zoo's own
    layers, registered name -> the module Keras records for it (the one that defines it)."""
    if isinstance(node, dict):
        module, class_name = node.get("module"), node.get("class_name")
        inner = node.get("config")
        name = inner.get("name", class_name) if isinstance(inner, dict) else class_name
        here = (f"{where}/{name}" if where else str(name)) if class_name else where
        # The zoo's own layers: Keras resolves them by registered name, recorded with their defining module.
        own_layer = module is not None and own_layers.get(node.get("registered_name")) == module
        if isinstance(module, str) and not _keras_module(module) and not own_layer:
            yield here, f"names module {module!r} (only Keras' own are loaded)"
        if class_name in CODE_LAYERS:
            yield here, f"is a {class_name} layer (it runs arbitrary Python code)"
        for key, value in node.items():
            if key != "compile_config":
                yield from _refusals(value, own_layers, here)
    elif isinstance(node, list):
        for value in node:
            yield from _refusals(value, own_layers, where)


def check_keras_file(path: str) -> None:
    """Raise :class:`UnsafeModelError` (one line naming the file and the reason) unless ``path`` is a ``.keras``
    zip whose architecture only uses Keras' own classes and no code-calling layer."""
    if not str(path).endswith(KERAS_SUFFIX) or not os.path.isfile(path) or not zipfile.is_zipfile(path):
        what = "a directory" if os.path.isdir(path) else "missing" if not os.path.exists(path) else "not a .keras zip"
        raise UnsafeModelError(f"refusing to load Keras model {path}: {what}; only the .keras format is loaded "
                               "(safe mode: the legacy HDF5 and SavedModel formats can run arbitrary code)")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise UnsafeModelError(f"refusing to load Keras model {path}: no readable config.json ({exc})") from None
    own_layers = {name: layers.module for layers in _declared_own_layers() for name in layers.registered_names}
    for place, reason in _refusals(config, own_layers):
        raise UnsafeModelError(f"refusing to load Keras model {path}: {place} {reason}")


def load_keras_model(path: str):
    """The model at ``path``, checked by :func:`check_keras_file`, loaded in Keras' safe mode, uncompiled."""
    check_keras_file(path)
    from tensorflow import keras

    for layers in _declared_own_layers():  # the zoo's own layers, by the names the file records
        layers.classes()
    return keras.models.load_model(path, compile=False, safe_mode=True)
