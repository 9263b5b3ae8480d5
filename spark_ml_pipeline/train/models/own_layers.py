"""An architecture's own Keras layers: the one way a zoo module defines, registers and vouches for them.

A module writes its layer classes inside one function (so TensorFlow stays a lazy import) and wraps it::

    def _define_layers():
        from tensorflow import keras

        class Scale(keras.layers.Layer):
            ...

        return [Scale]

    OWN_LAYERS = OwnLayers(_define_layers, names=("Scale",))
    ...
    scale = OWN_LAYERS.classes()["Scale"](name="scale")(x)

The names are written beside the function because the safe loader (:mod:`.loading`) checks a file against them
before TensorFlow is imported; :meth:`OwnLayers.classes` fails loudly if the function defines others.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

KERAS_PACKAGE = "spark_ml_pipeline"  # the package Keras registers the zoo's own layers under


class OwnLayers:
    """Layer classes defined by ``define`` on first use and registered with Keras as ``spark_ml_pipeline>Name``."""

    def __init__(self, define: Callable[[], Iterable[type]], names: Iterable[str]):
        self._define = define
        self.names = tuple(names)
        # Keras records a layer's defining module in the saved file: the module the classes are written in.
        self.module: str = define.__module__
        self._classes: Optional[dict[str, type]] = None

    @property
    def registered_names(self) -> frozenset[str]:
        """The names Keras records for these layers (``registered_name`` in a ``.keras`` file's config)."""
        return frozenset(f"{KERAS_PACKAGE}>{name}" for name in self.names)

    def classes(self) -> dict[str, type]:
        """Name -> class, defined and registered with Keras once (before building or loading a model)."""
        if self._classes is None:
            from tensorflow import keras

            register = keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
            defined = {cls.__name__: register(cls) for cls in self._define()}
            if set(defined) != set(self.names):
                raise TypeError(f"{self.module} defines layers {sorted(defined)} but declares {sorted(self.names)}")
            self._classes = defined
        return self._classes
