"""``batch-latch status OUT --customer ID``: one customer's whole story in this job.

Read from the ledger's ``events`` view (``job.db``), oldest first: every command that read
or wrote the customer, what it held before, what was written, the status and message. A
write recorded before it was sent whose answer never came shows as ``writing``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from batch_latch.errors import BatchLatchError
from batch_latch.jobfolder import job as jobs
from batch_latch.settings import Settings
from batch_latch.vocab import ExitCode, command_words, plural


class UnknownCustomer(BatchLatchError):
    """The job's ledger holds no trace of the customer asked about."""


@dataclass(frozen=True)
class StoryEvent:
    """One thing the job did to (or learnt of) the customer; the keys of ``--json``."""

    at: str
    kind: str
    run: str  # the run folder's name
    user: str
    status: str
    change: str
    geotabId: str  # the report's column names, as the contract spells them
    previous_geotabId: str
    message: str


def show(settings: Settings, out: TextIO) -> int:
    """Print the story of ``settings.customer`` (text, or JSON with ``--json``)."""
    assert settings.customer is not None
    events = story(settings.out, settings.customer)
    if settings.json:
        data = {"fusebillId": settings.customer, "events": [asdict(e) for e in events]}
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return ExitCode.OK
    out.write(
        f"Customer {settings.customer} in the job in {settings.out}: "
        f"{plural(len(events), 'event')}, oldest first\n"
    )
    for e in events:
        out.write(f"  {e.at}  {e.kind:<7} {e.run}  by {e.user or 'unknown'}\n")
        what = e.status + (f", {e.change}" if e.change else "")
        held = f", previous {e.previous_geotabId!r}" if e.previous_geotabId else ""
        out.write(f"      {what}: geotabId {e.geotabId!r}{held}; {e.message}\n")
    return ExitCode.OK


def story(out: Path, fusebill_id: int) -> list[StoryEvent]:
    """Every event of the customer in the job in ``out``, oldest first."""
    if not jobs.exists(out):
        raise UnknownCustomer(f"{out} is not a batch-latch job folder (no job.db)")
    ledger = jobs.open_to_read(out)
    try:
        rows = ledger.query(
            "SELECT e.at, c.kind, e.run_id, c.user, e.status, e.change, e.geotabId, "
            "COALESCE(e.previous_geotabId, ''), e.message "
            "FROM events e JOIN log l ON l.seq = e.seq JOIN commands c ON c.id = l.command "
            "WHERE e.fusebillId = ? ORDER BY e.seq",
            (fusebill_id,),
        )
    finally:
        ledger.close()
    if not rows:
        raise UnknownCustomer(
            f"customer {fusebill_id} is not in the job in {out}: no command of it read or "
            "wrote that fusebillId"
        )
    return [StoryEvent(r[0], _shown(r[1]), *r[2:]) for r in rows]


def _shown(kind: str) -> str:
    """A command as the story names it: its run kind (an undo --dry-run is an undo)."""
    words = command_words(kind)
    return kind if words is None else str(words.run_kind)
