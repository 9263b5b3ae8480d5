"""Named pipelines: name -> module. Imported lazily so loading one pipeline never imports the others."""
from __future__ import annotations

import importlib
from types import ModuleType

from pipelines.errors import ConfigError

PIPELINES = {
    "taxi_fare": "pipelines.taxi_fare",
    "fashion_mnist": "pipelines.fashion_mnist",
    "fashion_autoencoder": "pipelines.fashion_autoencoder",
    "darcy_surrogate": "pipelines.darcy_surrogate",
    "tweet_sentiment": "pipelines.tweet_sentiment",
}


def pipeline_module(name: str) -> ModuleType:
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r} (known: {', '.join(sorted(PIPELINES))})")
    return importlib.import_module(PIPELINES[name])


def config_class_for(name: str):
    return pipeline_module(name).CONFIG
