"""Opening a job's ledger: a v3 folder is taken in first, and the job's API is checked.

A job is bound to its API (``FUSEBILL_BASE_URL``) only once an answer in Fusebill's format
came from it; a command against another API is refused, naming both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from batch_latch.errors import CheckpointError
from batch_latch.jobfolder import v3_import
from batch_latch.jobfolder.history import RUNS, lock
from batch_latch.jobfolder.ledger import FILENAME, Ledger, LedgerError

_IMPORTING = ".job.db.import"


def exists(out: Path) -> bool:
    """Whether ``out`` holds a job (its ledger, or a v3 job to take in)."""
    return (out / FILENAME).exists() or v3_import.is_v3(out) or (out / RUNS).is_dir()


def job_of_report(source: Path) -> Path | None:
    """The job folder a fed-back report belongs to: the folder it sits in (``OUT/``) or
    the job whose run folder holds it (``OUT/runs/<run>/``); None for any other file."""
    folder = source.parent
    candidates = [folder, folder.parent.parent] if folder.parent.name == RUNS else [folder]
    for job in candidates:
        if (job / FILENAME).exists() or v3_import.is_v3(job):
            return job
    return None


def open_job(out: Path, base_url: str | None = None, err: TextIO | None = None) -> Ledger:
    """The job's ledger (made when new, a v3 job taken in first); with ``base_url``, a
    job bound to another API is refused."""
    if not (out / FILENAME).exists() and v3_import.is_v3(out):
        _take_in(out, err or sys.stderr)
    ledger = Ledger.open(out)
    if base_url is not None:
        try:
            refuse_other_api(out, ledger.bound_to(), base_url)
        except CheckpointError:
            ledger.close()
            raise
    return ledger


def refuse_other_api(out: Path, bound: str | None, base_url: str) -> None:
    """A job bound to another API (its job.db holds answers from it) is refused, naming both;
    it never suggests --fresh."""
    if bound is not None and bound != base_url:
        raise CheckpointError(
            f"the job in {out} is bound to {bound} (its job.db holds answers from that "
            f"API), not {base_url}: check FUSEBILL_BASE_URL, or use another --out for "
            f"{base_url}"
        )


def open_to_read(out: Path) -> Ledger:
    """The job's ledger for a command that reads it without holding the job (``status``):
    a v3 job is taken in under the job's lock, so that it never races a command taking it
    in (``JobBusy`` while one does: it names the holder)."""
    if not (out / FILENAME).exists() and v3_import.is_v3(out):
        with lock(out):
            return open_job(out)
    return open_job(out)


def _take_in(out: Path, err: TextIO) -> None:
    """Import beside the ledger, then rename it into place: a kill mid-way leaves no
    half-made job.db (the next command starts the import again)."""
    _remove_import(out)
    ledger = Ledger.open(out, name=_IMPORTING)
    try:
        v3_import.take_in(out, ledger, err)
    except CheckpointError:
        ledger.close()
        _remove_import(out)
        raise
    except Exception as exc:
        ledger.close()
        _remove_import(out)
        raise LedgerError(f"cannot take the v3 job in {out} into {FILENAME}: {exc}") from None
    ledger.close()
    os.replace(out / _IMPORTING, out / FILENAME)


def _remove_import(out: Path) -> None:
    for leftover in out.glob(_IMPORTING + "*"):
        leftover.unlink()
