"""How an architecture joins the zoo: its module declares it once, and the library asks the declaration.

    ARCHITECTURE = declare(Architecture(spec=FNOSpec, build=build_fno, own_layers=OWN_LAYERS,
                                        resolution_free=True))

A declaration names the spec class (its ``kind`` literal gives the kinds it parses), the builder, the module's own
Keras layers (:class:`.own_layers.OwnLayers`: registered before loading and allowed by the safe loader) and what
the architecture can do, which pipelines ask instead of naming kinds. :func:`architectures` imports every module
of this package first, so a new module with a declaration is all the zoo (:mod:`.zoo`), the safe loader
(:mod:`.loading`) and the pipelines need; a declaration made elsewhere (a test's toy) joins when it runs.
"""
from __future__ import annotations

import importlib
import pkgutil
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Union

from pydantic import BaseModel

from spark_ml_pipeline.train.models.own_layers import OwnLayers

if TYPE_CHECKING:  # pragma: no cover
    from tensorflow import keras


@dataclass(frozen=True)
class Architecture:
    """One architecture of the zoo: ``build(spec, input_shape, output_shape, output_activation)`` -> an
    uncompiled Keras model (see :mod:`.zoo` for the head rules), and its capabilities."""

    spec: type[BaseModel]  # a SpecBase subclass with a ``kind: Literal[...]`` field
    build: Callable[..., "keras.Model"]
    own_layers: Optional[OwnLayers] = None  # the custom Keras layers its models contain
    reconstructs_input: bool = False  # its output is its input's reconstruction: output_shape may be omitted
    resolution_free: bool = False  # with (H, W, C) inputs it predicts on grids other than the one it trained on
    token_input: bool = False  # its input is token ids and its spec's ``vocab_size`` the embedding's rows
    variational: bool = False  # a Gaussian latent with a KL term in its losses: an ELBO to report, a prior to sample

    @property
    def kinds(self) -> tuple[str, ...]:
        """The ``kind`` values its spec parses (``lstm`` and ``bilstm`` share one spec)."""
        return typing.get_args(self.spec.model_fields["kind"].annotation)


_DECLARED: dict[str, Architecture] = {}  # kind -> its declaration
_DISCOVERED = False


def declare(architecture: Architecture) -> Architecture:
    """Add ``architecture`` to the zoo under each of its kinds; returns it (``ARCHITECTURE = declare(...)``)."""
    if not architecture.kinds:
        raise TypeError(f"{architecture.spec.__name__} needs a field kind: Literal[...] naming its kinds")
    if architecture.token_input and "vocab_size" not in architecture.spec.model_fields:
        raise TypeError(f"{architecture.spec.__name__} takes token ids but has no vocab_size field")
    for kind in architecture.kinds:
        taken = _DECLARED.get(kind)
        # The same spec declared again (its module re-imported) replaces itself; another spec may not.
        if taken is not None and _qualified(taken.spec) != _qualified(architecture.spec):
            raise ValueError(f"kind {kind!r} is declared twice: by {_qualified(taken.spec)} "
                             f"and {_qualified(architecture.spec)}")
    _DECLARED.update({kind: architecture for kind in architecture.kinds})
    return architecture


def architectures() -> dict[str, Architecture]:
    """Every declared architecture by kind, in the kinds' order: this package's modules (imported on the first
    call) and any declared since. A declaration with several kinds appears under each."""
    global _DISCOVERED
    if not _DISCOVERED:
        package = importlib.import_module(__package__)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{__package__}.{module.name}")
        # Set after the loop: a module importing the zoo mid-discovery finds every declaration when it asks.
        _DISCOVERED = True
    return dict(sorted(_DECLARED.items()))  # sorted: the same order whatever imported the modules first


def architecture_of(spec: Union[BaseModel, str]) -> Architecture:
    """The declaration of a spec (or of a kind name)."""
    kind = spec if isinstance(spec, str) else spec.kind
    declared = architectures()
    if kind not in declared:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(declared)})")
    return declared[kind]


def _qualified(spec: type) -> str:
    return f"{spec.__module__}.{spec.__qualname__}"
