"""``batch-latch status OUT --customer ID``: one customer's whole story in this job.

From the job's files alone, oldest first: each command that reached the customer (its
``results.csv`` row, with the command's kind, run folder and user from ``summary.json``),
and what only the checkpoints know: a write recorded before it was sent whose outcome
never followed (``writing``), and outcomes of a command whose run folder is missing (kill
-9). The checkpoints set aside by ``--fresh`` (``checkpoint-<time>.csv.old``) are read too.

A results.csv is streamed block by block and only the customer's rows are kept; a file
whose bytes do not hold the id at all is not parsed (a 1M-row file: see the README).
"""

from __future__ import annotations

import json
import mmap
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch_latch.clock import folder_stamp
from batch_latch.errors import BatchLatchError, NotAJob
from batch_latch.jobfolder import checkpoint_file
from batch_latch.jobfolder.checkpoint import FILENAME, WRITING, Records
from batch_latch.jobfolder.checkpoint_file import said
from batch_latch.jobfolder.memory import set_aside
from batch_latch.reports.writer import Summary, job_summaries
from batch_latch.send.journal import LANDED
from batch_latch.settings import Settings
from batch_latch.sheet import formula
from batch_latch.vocab import Change, ExitCode, RunKind, plural

#: The results.csv columns a story needs (an older report may lack the last four).
_COLUMNS = ("fusebillId", "geotabId", "status", "message", "change", "previous_geotabId")
_TIME = "finished_at"
_BLOCK = 1 << 22  # bytes per block read: ~40,000 rows of a typical report


class UnknownCustomer(BatchLatchError):
    """The job's files hold no trace of the customer asked about."""


@dataclass(frozen=True)
class StoryEvent:
    """One thing the job did to (or learnt of) the customer; the keys of ``--json``."""

    at: str
    kind: str
    run: str  # the run folder's name; "" when only the checkpoint remembers it
    user: str
    status: str
    change: str
    geotabId: str  # the report's column names, as the contract spells them
    previous_geotabId: str
    message: str


@dataclass(frozen=True)
class _Command:
    folder: Path
    summary: Summary


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
        where = e.run or "(no run folder: from the checkpoint)"
        out.write(f"  {e.at}  {e.kind:<7} {where}  by {e.user or 'unknown'}\n")
        what = e.status + (f", {e.change}" if e.change else "")
        held = f", previous {e.previous_geotabId!r}" if e.previous_geotabId else ""
        out.write(f"      {what}: geotabId {e.geotabId!r}{held}; {e.message}\n")
    return ExitCode.OK


def story(out: Path, fusebill_id: int) -> list[StoryEvent]:
    """Every event of the customer in the job in ``out``, oldest first."""
    commands = _commands(out)
    events: list[StoryEvent] = []
    for command in commands:
        events += _from_results(command, fusebill_id)
    # A record is the same event as a results row that says the same at the same second (a
    # run and a --fresh run in one second differ in their change; an undo's row names the
    # geotabId it took away, its record none, so the geotabId is not compared).
    seen = {(e.status, e.change, e.at) for e in events}
    writers = [c for c in commands if _writes_checkpoint(c.summary)]
    remembered = [
        e
        for e in _from_checkpoints(out, fusebill_id, writers)
        if (e.status, e.change, e.at) not in seen
    ]
    if not events and not remembered:
        raise UnknownCustomer(
            f"the job in {out} never saw customer {fusebill_id}: no command read or wrote it "
            "(check the id, or give the --out folder of the job that has it)"
        )
    # A write-ahead record comes before the outcome recorded in the same second.
    return sorted(remembered + events, key=lambda e: e.at)


def _writes_checkpoint(summary: Summary) -> bool:
    """Only a run or an undo that sends records in the checkpoint (a plan or a dry run
    that ended in the same second must not be taken for its writer)."""
    kinds = (RunKind.RUN.value, RunKind.UNDO.value)
    return summary.kind in kinds and not summary.dry_run


def _commands(out: Path) -> list[_Command]:
    return [_Command(folder, summary) for folder, summary in job_summaries(out)]


def _from_results(command: _Command, fusebill_id: int) -> list[StoryEvent]:
    s = command.summary
    rows = _rows_of(command.folder / "results.csv", fusebill_id)
    if rows is None:
        return []
    kind = s.kind + (" (dry run)" if s.kind == RunKind.UNDO.value and s.dry_run else "")
    events = []
    for i in range(rows.num_rows):
        done = rows[_TIME][i].as_py() or ""
        events.append(
            StoryEvent(
                at=done if done >= s.started_at else s.started_at,  # else an earlier run's
                kind=kind,
                run=command.folder.name,
                user=s.user,
                **{name: rows[name][i].as_py() or "" for name in _COLUMNS[1:]},
            )
        )
    return events


def _rows_of(path: Path, fusebill_id: int) -> pa.Table | None:
    """The rows of ``path`` (a results.csv) for this customer; None when it holds none."""
    key = str(fusebill_id)
    try:
        with path.open("rb") as handle:
            if path.stat().st_size == 0:
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data.find(key.encode()) < 0:
                    return None  # not one byte of it: no need to parse
        names = (*_COLUMNS, _TIME)
        reader = pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(block_size=_BLOCK),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=list(names),
                include_missing_columns=True,
                strings_can_be_null=False,
            ),
        )
        kept = [b.filter(pc.equal(b["fusebillId"], key)) for b in reader]
    except (OSError, pa.ArrowInvalid) as exc:
        raise NotAJob(f"{path} cannot be read ({str(exc).splitlines()[0][:80]})") from None
    table = pa.Table.from_batches([b for b in kept if b.num_rows], schema=reader.schema)
    if not table.num_rows:
        return None
    columns = {n: formula.unescape(pc.fill_null(table[n].combine_chunks(), "")) for n in names}
    return pa.table(columns)


def _from_checkpoints(out: Path, fusebill_id: int, commands: list[_Command]) -> list[StoryEvent]:
    """The customer's records in the set-aside checkpoints (oldest first), then the
    checkpoint: outcomes (matched to the command that ran then) and unanswered writes."""
    events = []
    for path in [*set_aside(out), out / FILENAME]:
        records = _records(path)
        if records is None:
            continue
        eligible = commands if path.name == FILENAME else _written_before(path, commands)
        at = pa.array(np.flatnonzero(records.fusebill_id == fusebill_id))
        columns = (
            records.finished_at,
            records.status,
            records.change,
            records.geotab_id,
            records.previous,
            records.message,
        )
        mine = list(zip(*(c.take(at).to_pylist() for c in columns)))
        for i, values in enumerate(mine):
            record = _Record(*(v or "" for v in values))
            if record.status == WRITING and i + 1 < len(mine) and _answers(_Record(*mine[i + 1])):
                continue  # the next record is this write's outcome
            events.append(record.event(eligible))
    return events


def _written_before(path: Path, commands: list[_Command]) -> list[_Command]:
    """The commands that can have written a set-aside checkpoint: those whose run folder
    (named to the millisecond) is older than the file's last write (a rename keeps it).
    Without this a record of the second in which ``--fresh`` set the file aside would be
    told as the ``--fresh`` command's."""
    try:
        last = folder_stamp(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
    except OSError:
        return commands
    return [c for c in commands if c.folder.name[: len(last)] <= last]


@dataclass(frozen=True)
class _Record:
    """One checkpoint record of the customer, as the story needs it."""

    at: str
    status: str
    change: str
    geotab_id: str
    previous: str
    message: str

    def event(self, commands: list[_Command]) -> StoryEvent:
        """The record as an event of the command that ran at its time (if its run folder
        is there)."""
        during = next(
            (c for c in commands if c.summary.started_at <= self.at <= c.summary.finished_at),
            None,
        )
        undo = self.change == Change.UNDO.value
        return StoryEvent(
            at=self.at,
            kind=during.summary.kind if during else (RunKind.UNDO if undo else RunKind.RUN).value,
            run=during.folder.name if during else "",
            user=during.summary.user if during else "",
            status=self.status,
            change=self.change,
            geotabId=self.geotab_id,
            previous_geotabId=self.previous,
            message=said(self.status, self.message),
        )


def _answers(later: _Record) -> bool:
    """Whether a record is the outcome of the write recorded just before it (a later
    command's "it landed" record is not: that write's answer never came)."""
    return later.status != WRITING and later.message != LANDED


def _records(path: Path) -> Records | None:
    """Every record of one checkpoint file, whichever API it was made against."""
    try:
        # The checkpoint's own readers (one format, one place); a damaged file tells nothing.
        version, _ = checkpoint_file.header(path)
        return Records(checkpoint_file.read_table(path, version))
    except (BatchLatchError, OSError):
        return None
