"""One exception root: every subclass carries the one line the CLI prints, and its exit code."""

from __future__ import annotations

import errno


class BatchLatchError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""

    exit_code = 2


class InputError(BatchLatchError):
    """The input file cannot be used (missing, unreadable, no header, columns not found...)."""


class ConfigError(BatchLatchError):
    """Usage or configuration is wrong (missing key, bad base URL, bad option value)."""


class CheckpointError(BatchLatchError):
    """The job in --out cannot be used for this run (bound to another API, a damaged v3 file)."""


class NotAJob(BatchLatchError):
    """``undo`` or ``status`` was pointed at a folder that holds no job, or a damaged one."""


class OutputError(BatchLatchError):
    """A file the command must write could not be written (disk full, permissions). Once
    requests went out, the command stopped (exit 3: job.db has every outcome)."""


class ReportError(OutputError):
    """The reports could not be written."""


class JobFolderError(OutputError):
    """The job folder (its lock, run folders, published copies) could not be written."""


#: What a full disk (or a spent quota on it) asks of the user, in every message about it.
NO_SPACE = "No space left on device: free some space and run again"


def why(exc: OSError) -> str:
    """The cause of a failed file operation in words: a full disk says what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NO_SPACE
    return exc.strerror or str(exc)


class InternalError(BatchLatchError):
    """A bug: the command stopped on an exception it did not expect. The full traceback
    (secrets redacted) is kept in ``kept``; ``str(err)`` names that file."""

    exit_code = 70

    def __init__(self, message: str, kept: str | None) -> None:
        super().__init__(message)
        self.kept = kept
