"""Errors a user can act on. Jobs print their message and exit non-zero, without a traceback."""


class PipelineError(Exception):
    """Base class: the message names the file, column or key at fault."""


class ConfigError(PipelineError):
    """A configuration file or override is wrong (unknown key, wrong type, bad value)."""


class DataError(PipelineError):
    """Input data cannot be read as declared (missing files, missing or mistyped columns)."""
