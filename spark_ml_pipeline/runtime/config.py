"""Layered, typed configuration.

Layers, later wins: ``conf/base.yaml`` < ``conf/pipelines/<pipeline>.yaml`` < ``conf/env/<env>.yaml`` (one or
more, e.g. ``cluster,gpu``) < command-line ``key=value`` overrides (dotted keys, YAML values). The environment
sits above the pipeline so that ``--env cluster`` can change what a pipeline file sets. The pipeline file's
``kind`` (default: its name) picks the pipeline package whose pydantic model validates the merged tree before
Spark starts; an unknown key or a wrong type raises :class:`ConfigError` naming the dotted key and the layer
that set it.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.discovery import PipelineDefinition, find_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError

CONF_DIR_ENV = "SML_CONF_DIR"
PIPELINES_DIR, ENVS_DIR = "pipelines", "env"
COMMAND_LINE = "command line"


def default_conf_dir() -> Path:
    """``$SML_CONF_DIR``, else ``conf/`` beside the package (source checkout), else ``./conf``."""
    if os.environ.get(CONF_DIR_ENV):
        return Path(os.environ[CONF_DIR_ENV])
    beside_package = Path(__file__).resolve().parents[2] / "conf"
    return beside_package if beside_package.is_dir() else Path.cwd() / "conf"


@dataclass
class LayeredTree:
    """A merged YAML tree plus, for every dotted key, the layer that set it last."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def merge(self, layer: Mapping[str, Any], source: str) -> None:
        _merge_into(self.values, layer, source, self.sources, prefix="")

    def source_of(self, dotted_key: str) -> str:
        """The layer that set ``dotted_key`` or its nearest enclosing key."""
        parts = dotted_key.split(".")
        for end in range(len(parts), 0, -1):
            found = self.sources.get(".".join(parts[:end]))
            if found:
                return found
        return "defaults"


def _merge_into(target: dict, layer: Mapping[str, Any], source: str, sources: dict, prefix: str) -> None:
    for key, value in layer.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: key {prefix}{key!r} must be a string")
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            sources.setdefault(dotted, source)
            _merge_into(target[key], value, source, sources, prefix=f"{dotted}.")
        else:
            target[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value
            _record_sources(value, dotted, source, sources)


def _record_sources(value: Any, dotted: str, source: str, sources: dict) -> None:
    sources[dotted] = source
    if isinstance(value, Mapping):
        for key, child in value.items():
            _record_sources(child, f"{dotted}.{key}", source, sources)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["model.max_depth=6", "spark.master=local[2]"]`` -> nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"{COMMAND_LINE}: override {item!r} is not of the form dotted.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError):  # ValueError: YAML's own date parse, e.g. 2026-13-45
            value = raw
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{COMMAND_LINE}: override {item!r} conflicts with another override")
        node[leaf] = value
    return tree


def known_pipelines(conf_dir: Path | None = None) -> list[str]:
    """The pipelines a configuration directory declares: one file each in ``pipelines/``."""
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    return sorted(p.stem for p in (conf_dir / PIPELINES_DIR).glob("*.yaml"))


def layer_config(pipeline: str, envs: Sequence[str] = ("local",), overrides: Sequence[str] = (),
                 conf_dir: Path | None = None) -> LayeredTree:
    conf_dir = _existing(conf_dir)
    pipeline_file = conf_dir / PIPELINES_DIR / f"{pipeline}.yaml"
    if not pipeline_file.is_file():
        raise ConfigError(f"unknown pipeline {pipeline!r}: no {pipeline_file} "
                          f"(known: {', '.join(known_pipelines(conf_dir)) or 'none'})")
    return _layered(conf_dir, pipeline_file, envs, overrides)


def shared_config(pipeline: str, envs: Sequence[str] = ("local",), overrides: Sequence[str] = (),
                  conf_dir: Path | None = None) -> PipelineConfigBase:
    """The sections every pipeline shares (Spark, store ...) for a pipeline whose file is not written yet:
    ``conf/base.yaml`` < environments < overrides (e.g. to draft its file)."""
    tree = _layered(_existing(conf_dir), None, envs, overrides)
    tree.values.setdefault("pipeline", pipeline)
    tree.values.setdefault("kind", pipeline)
    return validate(PipelineConfigBase, tree)


def _existing(conf_dir: Path | None) -> Path:
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    if not conf_dir.is_dir():
        raise ConfigError(f"configuration directory {conf_dir} does not exist (set {CONF_DIR_ENV})")
    return conf_dir


def _layered(conf_dir: Path, pipeline_file: Path | None, envs: Sequence[str], overrides: Sequence[str]
             ) -> LayeredTree:
    tree = LayeredTree()
    layers = [conf_dir / "base.yaml", *([pipeline_file] if pipeline_file else []),
              *(conf_dir / ENVS_DIR / f"{env}.yaml" for env in envs)]
    for path in layers:
        if not path.is_file():
            known = sorted(p.stem for p in (conf_dir / ENVS_DIR).glob("*.yaml"))
            raise ConfigError(f"{path}: no such configuration file (environments: {', '.join(known)})")
        tree.merge(read_yaml(path), str(path))
    tree.merge(parse_overrides(overrides), COMMAND_LINE)
    return tree


def validate(model_class: type[BaseModel], tree: LayeredTree) -> BaseModel:
    try:
        return model_class.model_validate(tree.values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, tree)) from None


def describe_validation_error(exc: ValidationError, tree: LayeredTree) -> str:
    lines = []
    for error in exc.errors():
        dotted = ".".join(str(part) for part in error["loc"])
        if not dotted:
            lines.append(error["msg"])
            continue
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key '{dotted}' (set in {tree.source_of(dotted)})")
        elif error["type"] == "missing":
            lines.append(f"missing key '{dotted}' (required; add it to a configuration file)")
        else:
            lines.append(f"key '{dotted}' (set in {tree.source_of(dotted)}): {error['msg']}"
                         f" (got {error.get('input')!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(pipeline: str, envs: Sequence[str] = ("local",), overrides: Sequence[str] = (),
                conf_dir: Path | None = None) -> BaseModel:
    """Load, layer and validate the configuration of a named pipeline (validated by its kind's model)."""
    return load_pipeline(pipeline, envs, overrides, conf_dir)[0]


def load_pipeline(pipeline: str, envs: Sequence[str] = ("local",), overrides: Sequence[str] = (),
                  conf_dir: Path | None = None) -> tuple[BaseModel, PipelineDefinition]:
    """The validated configuration of a named pipeline and the definition of its kind."""
    tree = layer_config(pipeline, envs, overrides, conf_dir)
    declared = tree.values.get("pipeline", pipeline)
    if declared != pipeline:
        raise ConfigError(f"{tree.source_of('pipeline')}: declares pipeline {declared!r}, expected {pipeline!r}")
    kind = tree.values.get("kind", pipeline)
    if not isinstance(kind, str):
        raise ConfigError(f"key 'kind' (set in {tree.source_of('kind')}): expected the name of a pipeline kind")
    definition = find_pipeline(kind, where=f"key 'kind' (set in {tree.source_of('kind')})")
    tree.values["pipeline"], tree.values["kind"] = pipeline, kind
    return validate(definition.config, tree), definition
