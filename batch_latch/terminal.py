"""Every line the tool writes to stdout or stderr goes through one guarded writer.

A reader that went away (a dead ``tee``, ``| head``: EPIPE), a stream closed before the
command started, or a terminal hung up (SIGHUP) must change no row's outcome, no report and
no exit code. :class:`Guarded` swallows the failed write and marks the stream dead; from
then on its writes are dropped. The dead stream's file descriptor is pointed at the null
device, so Python's own flush of it at exit cannot fail either (no "Exception ignored",
no exit code 120).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from typing import TextIO, cast


class Guarded(io.TextIOBase):
    """A text stream whose writes never raise; ``None`` (no stream at all) is dead at once."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._stream = stream
        self._lock = threading.Lock()
        self.dead = stream is None
        self._fd_muted = False

    def write(self, text: str) -> int:
        if not self.dead and self._stream is not None:
            try:
                self._stream.write(text)
            except (OSError, ValueError):  # EPIPE, EIO (hung-up tty), closed file
                self.mute()
        return len(text)

    def flush(self) -> None:
        if not self.dead and self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.mute()

    def mute(self) -> None:
        """Write nothing more here: the reader is gone (or about to be, after a SIGHUP)."""
        with self._lock:
            if self._stream is not None and not self._fd_muted:
                self._fd_muted = True
                _to_devnull(self._stream)
            self.dead = True

    def isatty(self) -> bool:
        if self.dead or self._stream is None:
            return False
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError("no stream")
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)


def _to_devnull(stream: TextIO) -> None:
    """Point the stream's descriptor at the null device; what it still buffers goes there."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        return
    try:
        os.dup2(null, fd)
    except OSError:
        pass
    finally:
        os.close(null)


def ensure_standard_fds() -> None:
    """A descriptor 0, 1 or 2 closed at start (``2>&-``) is opened on the null device, so
    no file the command opens later takes its number (and receives stray output)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:  # the lowest free number is this one; be sure anyway
                os.dup2(null, fd)
                os.close(null)


def stdout() -> Guarded | None:
    return sys.stdout if isinstance(sys.stdout, Guarded) else None


def stderr() -> Guarded | None:
    return sys.stderr if isinstance(sys.stderr, Guarded) else None


def mute_terminals() -> None:
    """After a SIGHUP: drop whatever would go to a terminal (a file or pipe keeps its lines)."""
    for stream in (stdout(), stderr()):
        if stream is not None and not stream.dead and stream.isatty():
            stream.mute()


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` guarded for the span (restored after, flushed)."""
    before_out, before_err = sys.stdout, sys.stderr
    out, err = Guarded(before_out), Guarded(before_err)
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    try:
        yield
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = before_out, before_err
