"""Checking a plugin (a pipeline's tuner, its scorer) against the ``typing.Protocol`` that states its contract.

``isinstance`` with a ``runtime_checkable`` protocol only asks whether the members exist: a tuner whose
``fit_trial`` takes other arguments passes it and fails in the middle of a search. :func:`unmet` also checks
each data member's type (its outer class: ``tuple`` for ``tuple[str, str]``) and that each method accepts the
protocol's positional arguments (their names may differ: a lambda may implement a method).
"""
from __future__ import annotations

import inspect
import typing
from typing import Any


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    """The protocol's methods (``__call__`` included: a stage is a callable) and their signatures without ``self``."""
    methods = {}
    for name, member in vars(protocol).items():
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__call__"):
            signature = inspect.signature(member)
            methods[name] = signature.replace(parameters=list(signature.parameters.values())[1:])
    return methods


def _call(name: str, signature: inspect.Signature) -> str:
    return f"{name}({', '.join(signature.parameters)})"


def unmet(plugin: Any, protocol: type) -> list[str]:
    """What ``plugin`` lacks of ``protocol``, one line each (empty: it meets it)."""
    gaps = []
    for name, declared in typing.get_type_hints(protocol).items():
        if not hasattr(plugin, name):
            gaps.append(f"no attribute {name!r}")
            continue
        expected = typing.get_origin(declared) or declared
        value = getattr(plugin, name)
        if isinstance(expected, type) and expected is not Any and not isinstance(value, expected):
            gaps.append(f"{name!r} is {type(value).__name__}, not {expected.__name__}")
    for name, signature in protocol_methods(protocol).items():
        member = plugin if name == "__call__" else getattr(plugin, name, None)
        if not callable(member):
            gaps.append(f"no method {_call(name, signature)}")
            continue
        arguments = [p for p in signature.parameters.values() if p.default is inspect.Parameter.empty]
        try:
            inspect.signature(member).bind(*arguments)
        except TypeError:
            gaps.append(f"{_call(name, inspect.signature(member))} does not take {_call(name, signature)}")
        except ValueError:  # a builtin without a signature: nothing more to check
            continue
    return gaps
