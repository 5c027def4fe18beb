"""Exceptions raised by pciesim (defined by the native module).

Error           base of all of them
ConfigError     a config file or dict is wrong: .file .line .column .path .message
UsageError      a bad call: unknown function, access outside a BAR, ...
ModelError      a model invariant broke (please report it)
MigrationError  a VFIO migration operation failed: .errno ('EINVAL', ...),
                .code (negative errno), .state (device state afterwards),
                .reason (why an image was refused), .message
"""
from ._native import ConfigError, Error, MigrationError, ModelError, UsageError  # noqa: F401
