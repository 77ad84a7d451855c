"""Keeping a bug's traceback: the whole of it, secrets redacted, in a file the user can send.

The terminal gets one line naming the file (never a traceback); ``--traceback`` or
``BATCH_LATCH_DEBUG=1`` lets the exception go through instead (httpie's ``--traceback``).
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

#: The file a command's run folder keeps a bug's traceback in.
ERROR_FILE = "error.txt"
#: Beside the reports: the tracebacks of the first rows a bug failed.
ROW_ERRORS_FILE = "row-errors.txt"
#: Set to 1 to let internal errors raise with their traceback (like ``--traceback``).
DEBUG_VARIABLE = "BATCH_LATCH_DEBUG"


def wanted(flag: bool) -> bool:
    """Whether the user asked for the traceback itself, by flag or environment."""
    return flag or os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def text_of(exc: BaseException, redact: Callable[[str], str]) -> str:
    """The exception's whole traceback, chained causes included, with secrets redacted."""
    return redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def keep(exc: BaseException, redact: Callable[[str], str], folder: Path | None) -> str | None:
    """Write the traceback to ``folder/error.txt`` (else a file in the temp folder); the
    path written, or None when no file could be written (the line says so)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f"batch-latch internal error at {stamp}\n\n{text_of(exc, redact)}"
    places = [folder / ERROR_FILE] if folder is not None else []
    places.append(Path(tempfile.gettempdir()) / f"batch-latch-error-{stamp.replace(':', '')}.txt")
    for place in places:
        try:
            place.write_text(body, encoding="utf-8")
        except OSError:
            continue
        return str(place)
    return None


def line(exc: BaseException, redact: Callable[[str], str], kept: str | None) -> str:
    """The one terminal line for a bug: what it was, and where its traceback is."""
    first = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:300]
    where = f"; the traceback is in {kept}" if kept else "; its traceback could not be written"
    return f"internal error (please report it, with that file): {redact(first)}{where}"
