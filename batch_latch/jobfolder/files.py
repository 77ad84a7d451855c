"""Writing files so that a crash leaves the old one or the new one, never half of either."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa


@contextmanager
def replacing(path: Path, *, sync: bool = True) -> Iterator[Path]:
    """A temporary name beside ``path`` to write; on success it is renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if sync:
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


def atomic_write(path: Path, write: Callable[[pa.NativeFile], object]) -> None:
    """Write through ``write``, sync, rename over ``path``, sync the folder."""
    with replacing(path) as tmp, pa.OSFile(str(tmp), "wb") as sink:
        write(sink)


def atomic_copy(source: Path, target: Path) -> None:
    """``source`` over ``target``, copied by the kernel. Not synced: it is a copy of a file
    that is (the run folder's), and ext4 and others flush a file renamed over another."""
    with replacing(target, sync=False) as tmp:
        shutil.copyfile(source, tmp)


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
