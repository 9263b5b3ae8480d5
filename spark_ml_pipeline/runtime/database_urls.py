"""Database URLs the stores are given (the MLflow tracking database, an Optuna study storage): whether a location
is one, which driver it gets, and how it is printed without its password."""
from __future__ import annotations

import importlib.util
import re


def is_rdb_url(location: str) -> bool:
    """A database URL (``postgresql://...``, ``sqlite:///...``), not a file path or ``file://`` URI."""
    return "://" in location and not location.startswith("file://")


def redacted(location: str) -> str:
    """A storage URL fit for logs and MLflow parameters: its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", location)


def rdb_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) with the installed driver: SQLAlchemy 2.1 maps a bare
    ``postgresql://`` to psycopg 3; the project's driver is psycopg2 (``psycopg2-binary``)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare) and importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len(bare):]
    return url
