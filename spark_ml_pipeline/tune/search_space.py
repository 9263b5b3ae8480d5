"""Search spaces from configuration (``tune.space``): sampling a trial's values and applying them.

The space is validated by :class:`spark_ml_pipeline.runtime.config_models.ParamSpec` when the configuration loads (bad
ranges, unknown types and log scales with ``low <= 0`` are :class:`ConfigError` messages naming
``tune.space.<param>``). Here: the order parameters are sampled in (conditions first), Optuna
``suggest_*`` calls, the grid the grid sampler enumerates, and a trial's configuration.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from spark_ml_pipeline.runtime.config_models import ParamSpec
from spark_ml_pipeline.runtime.errors import ConfigError


def target_key(name: str, spec: ParamSpec) -> str | None:
    """The dotted configuration key a parameter sets (``model.<name>`` by default, None for selectors)."""
    if spec.key is None:
        return f"model.{name}"
    return spec.key or None


def sampling_order(space: Mapping[str, ParamSpec]) -> list[str]:
    """Parameters in declaration order, each after the parameters its ``when`` condition reads."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ConfigError(f"tune.space.{name}: conditions form a cycle ({' -> '.join([*visiting, name])})")
        visiting.add(name)
        for parent in space[name].when:
            visit(parent)
        visiting.discard(name)
        order.append(name)

    for name in space:
        visit(name)
    return order


def is_active(spec: ParamSpec, values: Mapping[str, Any]) -> bool:
    for parent, wanted in spec.when.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if parent not in values or values[parent] not in allowed:
            return False
    return True


def suggest_one(trial, name: str, spec: ParamSpec):
    if spec.type == "categorical":
        return trial.suggest_categorical(name, list(spec.choices))
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)


def suggest(trial, space: Mapping[str, ParamSpec], grid: bool = False) -> dict[str, Any]:
    """A trial's values: active parameters only (conditions evaluated on the values drawn so far).

    With ``grid`` only parameters that have a grid (categoricals, or a ``grid:`` list) are drawn; the
    others keep their configured value, as in a ``ParamGridBuilder`` grid."""
    values: dict[str, Any] = {}
    for name in sampling_order(space):
        spec = space[name]
        if not is_active(spec, values):
            continue
        if grid and grid_values(spec) is None:
            continue
        values[name] = suggest_one(trial, name, spec)
    return values


def grid_values(spec: ParamSpec) -> list | None:
    if spec.type == "categorical":
        return list(spec.choices)
    if spec.grid is not None:
        return [int(v) if spec.type == "int" else float(v) for v in spec.grid]
    return None


def grid_space(space: Mapping[str, ParamSpec]) -> dict[str, list]:
    """What ``optuna.samplers.GridSampler`` enumerates (the CrossValidator-style grid)."""
    grid = {name: values for name, spec in space.items() if (values := grid_values(spec)) is not None}
    if not grid:
        raise ConfigError("tune.sampler=grid needs at least one categorical parameter or a 'grid:' list "
                          "in tune.space")
    return grid


def grid_size(space: Mapping[str, ParamSpec]) -> int:
    return math.prod(len(v) for v in grid_space(space).values())


def apply(config: BaseModel, space: Mapping[str, ParamSpec], values: Mapping[str, Any],
          fixed: Mapping[str, Any] | None = None) -> BaseModel:
    """A copy of ``config`` with a trial's values (and ``fixed`` dotted keys) set, validated again."""
    tree = config.model_dump()
    assignments = [(f"tune.space.{name}", target_key(name, space[name]), value) for name, value in values.items()]
    assignments += [(key, key, value) for key, value in (fixed or {}).items()]
    for origin, key, value in assignments:
        if key is None:
            continue
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"{origin}: key {key!r} is not a configuration section of this pipeline")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"{origin}: key {key!r} is not a configuration key of this pipeline")
        node[leaf] = value
    try:
        return type(config).model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        names = ", ".join(origin for origin, _, _ in assignments)
        raise ConfigError(f"a trial's values are invalid for this pipeline ({names}): {problems}") from None


def check_space(config: BaseModel) -> None:
    """Fail before Spark starts when a parameter targets an unknown key or its range is out of bounds."""
    space = config.tune.space
    if not space:
        raise ConfigError(f"tune.space is empty: add the parameters to search to conf/{config.pipeline}.yaml")
    for name, spec in space.items():
        for parent, wanted in spec.when.items():
            if parent not in space or parent == name:
                raise ConfigError(f"tune.space.{name}.when: {parent!r} is not another parameter of tune.space "
                                  f"(known: {', '.join(space)})")
            if space[parent].type == "categorical":
                missing = [v for v in (wanted if isinstance(wanted, list) else [wanted])
                           if v not in space[parent].choices]
                if missing:
                    raise ConfigError(f"tune.space.{name}.when: {missing!r} not among tune.space.{parent}.choices "
                                      f"{space[parent].choices!r}")
    sampling_order(space)
    for name, spec in space.items():
        probes = ([spec.choices[0], spec.choices[-1]] if spec.type == "categorical"
                  else [spec.low, spec.high])
        for probe in probes:
            value = int(probe) if spec.type == "int" else probe
            try:
                apply(config, {name: spec}, {name: value})
            except ConfigError as exc:
                raise ConfigError(f"tune.space.{name}: value {value!r} is not valid: {exc}") from None
