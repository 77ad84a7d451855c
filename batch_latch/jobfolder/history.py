"""The job folder's history: one folder per command, never overwritten; the latest reports
copied to the job folder itself; one command at a time.

``OUT/runs/<UTC time>-<kind>/`` holds a command's reports, its summary and a copy of its
input. The latest reports are then copied to ``OUT/`` (each atomically), except a file the
user is reading from or has edited since the tool wrote it: the tool never overwrites
what the user wrote until it has been fed back as an input (its copy is then in that run's
folder): after that, ``OUT/`` gets the latest reports again. ``OUT/.published.json``
remembers what the tool last put there (size and time), and which edited report was fed
back as it is.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from batch_latch.clock import file_stamp, folder_stamp, now_iso, utc_now
from batch_latch.errors import BatchLatchError, JobFolderError, why
from batch_latch.jobfolder.files import atomic_copy, atomic_write
from batch_latch.vocab import RunKind

RUNS = "runs"
LOCK = ".lock"
PUBLISHED = ".published.json"
#: In ``.published.json``: a report in ``OUT/`` the user edited and then fed back as a
#: command's input, as it was then (the fix loop goes on: a later command refreshes it).
FED_BACK = "fed-back:"


@dataclass(frozen=True)
class ReportPaths:
    results: Path
    failed: Path
    summary: Path
    xlsx: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.results, self.failed, self.summary, self.xlsx) if p is not None]


class JobBusy(BatchLatchError):
    """Another command is working on the same job folder."""


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers, services): say so plainly
        return "unknown"


def host() -> str:
    return socket.gethostname() or "unknown"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold the job folder for one command. An OS lock on an open file, so a crashed or
    killed command never leaves it stuck (the OS drops the lock with the process)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = (out / LOCK).open("a+")
    except OSError as exc:
        raise JobFolderError(f"cannot use job folder {out}: {why(exc)}") from None
    try:
        if not _try_lock(handle):
            held = _holder_text(handle)
            raise JobBusy(
                f"the job in {out} is busy: another batch-latch command is using it"
                f"{f' ({held})' if held else ''}; wait for it to finish (or use another --out)"
            )
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {host()} since {now_iso()}\n")
            handle.flush()
        except OSError as exc:
            raise JobFolderError(f"cannot use job folder {out}: {why(exc)}") from None
        yield
    finally:
        with suppress(OSError):  # a pid line that could not be flushed: said above
            handle.close()


def _holder_text(handle: IO[str]) -> str:
    """What the lock file says of the command holding it: ``pid N on HOST since TIME``."""
    try:
        handle.seek(0)
        text = handle.read(200).strip()
    except OSError:
        return ""
    return text if text.startswith("pid ") else ""


def holder(out: Path) -> str | None:
    """``pid N on HOST since TIME`` while a command holds the job (None: none does). Takes
    the lock for an instant when it is free, so it never blocks a command."""
    path = out / LOCK
    if not path.is_file():
        return None
    try:
        handle = path.open("r")
    except OSError:
        return None
    with handle:
        if _try_lock(handle):
            _unlock(handle)
            return None
        return _holder_text(handle) or "a command"


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":  # pragma: no cover - CI runs POSIX only
        import msvcrt

        with suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - CI runs POSIX only
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def new_run_folder(out: Path, kind: RunKind, started: datetime) -> Path:
    """``OUT/runs/<UTC time>-<kind>/``, never one that exists already."""
    base = out / RUNS / f"{folder_stamp(started)}-{kind.value}"
    folder, n = base, 2
    while folder.exists():
        folder, n = base.with_name(f"{base.name}-{n}"), n + 1
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise JobFolderError(f"cannot write reports to {folder}: {why(exc)}") from None
    return folder


#: In a run folder that holds no copy of its input: why not.
NO_INPUT_COPY = "input-not-copied.txt"


def copy_input(source: Path, folder: Path, loaded_sha256: str) -> str | None:
    """Copy the input into the run folder, hashing it on the way: a copy that is not the file
    as it was loaded (deleted, truncated or edited while the command ran) is not kept. Then
    ``NO_INPUT_COPY`` says why, and so does the line returned (None: copied)."""
    target = folder / f"input-{source.name}"
    try:
        reader = source.open("rb")
    except OSError as exc:
        return _no_copy(folder, f"{source} is gone or unreadable ({why(exc)})", loaded_sha256)
    digest = hashlib.sha256()
    try:
        with reader, target.open("wb") as writer:
            for block in iter(lambda: reader.read(1 << 20), b""):
                digest.update(block)
                writer.write(block)
    except OSError as exc:
        raise JobFolderError(f"cannot copy the input into {folder}: {why(exc)}") from None
    if digest.hexdigest() == loaded_sha256:
        return None
    target.unlink(missing_ok=True)
    return _no_copy(folder, f"{source} changed while the command ran", loaded_sha256)


def _no_copy(folder: Path, cause: str, loaded_sha256: str) -> str:
    text = (
        f"No copy of the input in this folder: {cause}. The reports are of the file as it "
        f"was loaded (SHA-256 {loaded_sha256}, as in summary.json).\n"
    )
    try:
        (folder / NO_INPUT_COPY).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise JobFolderError(f"cannot write {folder / NO_INPUT_COPY}: {why(exc)}") from None
    return f"{folder} holds no copy of the input: {cause}"


def publish(out: Path, paths: ReportPaths, source: Path | None) -> list[str]:
    """Copy a command's reports to ``OUT/``; returns what was kept back, in words."""
    found = _published(out)
    record = found or {}
    kept: list[str] = []
    wanted = {p.name for p in paths.all()}
    try:
        if found is None:  # damaged: as if absent, once what it cannot vouch for is kept aside
            kept += _keep_aside(out, paths, source)
        for stale in ("results.xlsx",):  # a report this command did not write must not linger
            if stale not in wanted and _ours(out / stale, record):
                (out / stale).unlink(missing_ok=True)
                record.pop(stale, None)
        for path in paths.all():
            target = out / path.name
            if source is not None and target.exists() and _same(target, source):
                kept.append(f"{target} is this command's input, so it was left as it is")
                # Fed back as it is now (its copy is in this run's folder): the next
                # command may replace it, unless the user edits it again first.
                record[path.name] = FED_BACK + _signature(target)
                continue
            if not _ours(target, record):
                kept.append(
                    f"{target} was changed since batch-latch wrote it, so it was left as is"
                )
                continue
            try:
                atomic_copy(path, target)
            except PermissionError:  # Windows: the file is open in Excel, say, and locked
                kept.append(f"{target} could not be replaced (is it open in another program?)")
                continue
            record[path.name] = _signature(target)
        text = json.dumps(record, indent=1).encode("utf-8")
        atomic_write(out / PUBLISHED, lambda sink: sink.write(text))
    except OSError as exc:
        raise JobFolderError(f"cannot write reports to {out}: {why(exc)}") from None
    return kept


def signatures(out: Path, paths: ReportPaths) -> dict[str, str | None]:
    """What each report's name in ``OUT/`` is now (None: absent), to tell after
    :func:`publish` which ones it replaced."""
    found: dict[str, str | None] = {}
    for path in paths.all():
        try:
            found[path.name] = _signature(out / path.name)
        except OSError:
            found[path.name] = None
    return found


def where_to_read(
    out: Path, paths: ReportPaths, before: dict[str, str | None]
) -> dict[str, str | None]:
    """Each report of a command (``results``, ``failed``, ``summary``, ``xlsx``) by the path
    that holds this command's copy: in ``OUT/`` when :func:`publish` replaced it there (a
    replaced file is a new one: its size and time changed), else in the run folder."""
    now = signatures(out, paths)
    named = {"results": paths.results, "failed": paths.failed, "summary": paths.summary}
    found: dict[str, str | None] = {}
    for key, path in (*named.items(), ("xlsx", paths.xlsx)):
        placed = path is not None and now[path.name] not in (None, before.get(path.name))
        found[key] = None if path is None else str((out / path.name if placed else path).absolute())
    return found


def _signature(path: Path) -> str:
    """Size and modification time: any save by the user changes them (cheaper than a hash
    of a report of a hundred megabytes, read on every run)."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _published(out: Path) -> dict[str, str] | None:
    """What the tool last put in ``OUT/``; {} when nothing yet, None when the record is
    damaged (unreadable, not JSON, not an object)."""
    path = out / PUBLISHED
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def _keep_aside(out: Path, paths: ReportPaths, source: Path | None) -> list[str]:
    """With ``.published.json`` damaged, no report in ``OUT/`` can be proved the tool's: each
    is renamed aside (``results.kept-<UTC time>.csv``) before this command's copy goes in."""
    stamp = file_stamp(utc_now())
    kept = []
    for path in paths.all():
        target = out / path.name
        if target.exists() and not (source is not None and _same(target, source)):
            aside = target.with_name(f"{target.stem}.kept-{stamp}{target.suffix}")
            target.replace(aside)
            kept.append(
                f"{out / PUBLISHED} was damaged, so {target}, which batch-latch cannot prove it "
                f"wrote, was kept as {aside.name} and replaced"
            )
    return kept


def _ours(target: Path, record: dict[str, str]) -> bool:
    """True when ``target`` is missing or still exactly what the tool last put there. A
    report from before this record existed (v1) counts as ours."""
    if not target.exists():
        return True
    if target.name not in record:
        return not (target.parent / PUBLISHED).exists()
    try:
        return _signature(target) == record[target.name].removeprefix(FED_BACK)
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
