"""Writing files so that a crash leaves the old one or the new one, never half of either."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa


def atomic_write(path: Path, write: Callable[[pa.NativeFile], object]) -> None:
    """Write to a temporary name beside ``path``, sync, rename over ``path``, sync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            write(sink)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    sync_dir(path.parent)


def sync_dir(folder: Path) -> None:
    """Make a rename itself durable (POSIX); a no-op where folders cannot be opened or synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
