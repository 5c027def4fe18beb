"""Exceptions raised by pciesim (defined by the native module).

Error           base of all of them
ConfigError     a config file or dict is wrong: .file .line .column .path .message
UsageError      a bad call: unknown function, access outside a BAR, ...
ModelError      a model invariant broke (please report it)
"""
from ._native import ConfigError, Error, ModelError, UsageError  # noqa: F401
