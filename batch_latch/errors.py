"""One exception root: every subclass carries the one line the CLI prints, and its exit code."""

from __future__ import annotations


class BatchLatchError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""

    exit_code = 2


class InputError(BatchLatchError):
    """The input file cannot be used (missing, unreadable, no header, columns not found...)."""


class ConfigError(BatchLatchError):
    """Usage or configuration is wrong (missing key, bad base URL, bad option value)."""


class CheckpointError(BatchLatchError):
    """The checkpoint in --out cannot be used for this run."""
