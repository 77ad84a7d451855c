"""Test helpers over the job's ledger (``job.db``): jobs made from lines, read back, and
the engine run as a command would run it (its line in ``commands``, then its end)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batch_latch.jobfolder.job import open_job
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.jobfolder.records import Records
from batch_latch.send import runner
from batch_latch.settings import Settings
from batch_latch.sheet.validate import Verdicts


def Record(  # the v3 record's shape, for tests that build jobs line by line
    fid: int,
    gid: str,
    status: str,
    http: int | None,
    message: str,
    key: str,
    at: str,
    change: str = "",
    previous: str = "",
    row: int | None = None,
) -> Entry:
    return Entry(fid, gid, status, change, previous, key, http, message, at, row, True)


@contextmanager
def command(out: Path, base_url: str, kind: str = "run", fresh: bool = False) -> Iterator[Ledger]:
    """A command's span on the job in ``out``: begun, then ended with exit 0."""
    ledger = open_job(out, base_url)
    try:
        n = ledger.query("SELECT count(*) FROM commands")[0][0]
        command_id = ledger.begin(
            f"test-{n + 1}-{kind}",
            kind,
            started_at="2026-01-01T00:00:00Z",
            base_url=base_url,
            fresh=fresh,
        )
        yield ledger
        ledger.end(command_id, ended_at="2026-01-01T00:00:01Z", exit_code=0)
    finally:
        ledger.close()


def write_job(out: Path, base_url: str, entries: list[Entry], kind: str = "run") -> Path:
    with command(out, base_url, kind) as ledger:
        for e in entries:
            ledger.record(e)
    return out


def records(out: Path, base_url: str) -> Records:
    ledger = open_job(out, base_url)
    try:
        return ledger.records(base_url)[0]
    finally:
        ledger.close()


def latch(settings: Settings, verdicts: Verdicts, **kwargs: Any) -> Any:
    """``runner.latch`` as the command runs it, on the job in ``settings.out``."""
    kind = settings.kind.value if settings.kind.value != "dry-run" else "dry_run"
    with command(settings.out, settings.base_url, kind, settings.fresh) as ledger:
        return runner.latch(settings.engine(), settings.rules(), verdicts, ledger=ledger, **kwargs)
