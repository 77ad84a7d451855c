"""``batch-latch undo OUT``: put back what this job's latches replaced.

For every customer the job latched (its checkpoint says which, and what each held before
the job's first change), read the customer; if it still holds what the job set, restore
it: ``UnlatchCustomer`` when it held none, ``LatchCustomer`` with the previous geotabId
otherwise. A customer changed since is left alone. Outcomes go into the checkpoint like a
run's, so an interrupted undo is finished by the next one and never unlatches twice: a
customer that already holds what it held before counts as restored without a write.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.clock import now_iso
from batch_latch.errors import NotAJob
from batch_latch.fusebill.answers import Meaning, classify_unlatch
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder import job
from batch_latch.jobfolder.earlier import Earlier, Target, Targets, Unanswered
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.reports.columns import (
    IntColumn,
    LiveOutcome,
    ResultColumns,
    RowOutcome,
    TextColumn,
)
from batch_latch.send.decisions import RowLogic, Task
from batch_latch.send.estimate import duration, requests_needed
from batch_latch.send.journal import LedgerJournal
from batch_latch.send.progress import Progress
from batch_latch.send.session import Session
from batch_latch.settings import URL_VARIABLE, Settings
from batch_latch.vocab import RECORDED, Change, Status, plural


@dataclass(frozen=True)
class UndoTask:
    index: int
    target: Target


def check_job(out: Path) -> None:
    if not job.exists(out):
        raise NotAJob(
            f"{out} is not a batch-latch job folder (no job.db); give the --out folder of "
            "the run to undo"
        )


def targets(settings: Settings, ledger: Ledger) -> tuple[Targets, str, Earlier]:
    """Every customer this job wrote to and has not put back, from the whole ledger (what
    ``--fresh`` starts set aside included), and the API they were written to."""
    url = settings.base_url
    if settings.dry_run and not settings.env.get(URL_VARIABLE):
        # Sends nothing and needs no key: nor FUSEBILL_BASE_URL; the job's own API it is.
        url = ledger.bound_to() or url
    records, _ = ledger.records(url)
    earlier = Earlier(records)
    return earlier.undo_targets(), url, earlier


def planned_columns(found: Targets, unlatch_unknown: bool, rows: pa.Array) -> ResultColumns:
    """What undo would do for each customer, without asking Fusebill (``undo --dry-run``)."""
    n = len(found)
    set_to, previous = found.set_to, found.previous

    def join(*parts: pa.Array | str) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    back = join("would latch back to '", previous, "' if it still holds '", set_to, "'")
    unlatch = join("would unlatch if it still holds '", set_to, "' (it held no geotabId before)")
    has_previous = pc.not_equal(previous, "")
    message = pc.if_else(pc.and_(pa.array(found.known), has_previous), back, unlatch)
    if not unlatch_unknown:
        alone = "would leave alone: what it held before is unknown (latched with --no-read)"
        message = pc.if_else(pa.array(found.known), message, alone)
    at = np.arange(n, dtype=np.int64)
    status, change = TextColumn(Status.VALID.value, n), TextColumn(Change.UNDO.value, n)
    text = TextColumn("", n)
    text.put(at, message)
    return _columns(
        found,
        status,
        text,
        TextColumn("", n),
        change,
        TextColumn("", n),
        IntColumn(n, nullable=True),
        IntColumn(n, nullable=False),
        rows,
    )


class UndoLogic:
    def __init__(
        self, rows: RowLogic, unlatch_unknown: bool, lost: dict[int, Unanswered] | None = None
    ) -> None:
        self.rows = rows
        self.unlatch_unknown = unlatch_unknown
        self.lost = lost or {}  # customers whose latest latch's answer was lost

    def process(self, task: UndoTask) -> RowOutcome:
        t = task.target
        origin = t.origin
        row = Task(task.index, t.fusebill_id, t.set_to)
        if not origin.known and not self.unlatch_unknown:
            return self._failed(
                None,
                "left alone: it was latched with --no-read, so what it held before is unknown "
                "(use --unlatch-unknown to unlatch it)",
                "unknown_previous",
            )
        sent, holding = self.rows.read(row)
        verdict = sent.verdict
        if verdict is None:
            return self.rows.stopped(0, sent.status)
        if verdict.kind is Meaning.NOT_FOUND:
            return self.rows.outcome(Status.NOT_FOUND, sent.status, 0, verdict.message, "not_found")
        if verdict.kind is not Meaning.SUCCESS or holding is None:
            return self._failed(
                sent.status, f"could not read the customer: {verdict.message}", "unreadable"
            )
        if not holding.known:
            return self._failed(
                sent.status,
                "left alone: this API does not show the customer's geotabId, so undo cannot "
                "check that it still holds what this job set",
                "cannot_check",
            )
        back = origin.previous if origin.known else ""
        if holding.geotab_id == (back or None):
            return self._restored(
                sent.status, 0, "already holds what it held before; nothing written"
            )
        lost = self.lost.get(t.fusebill_id)
        journal = self.rows.journal
        if lost is not None and holding.geotab_id == lost.geotab_id and journal is not None:
            # The read shows the latch whose answer was lost landed: this job's change.
            journal.landed(Task(task.index, t.fusebill_id, t.set_to, origin), lost)
        if holding.geotab_id != t.set_to:
            return self._failed(
                sent.status,
                f"left alone: it holds {holding.geotab_id!r} now, not {t.set_to!r} that this "
                "job set",
                "changed_since",
                settles=True,
            )
        if back:
            outcome = self.rows.latch(
                Task(task.index, t.fusebill_id, back), Change.UNDO, back, read_http=sent.status
            )
            if outcome.status is Status.SUCCESS:
                return self._restored(
                    outcome.http_status, outcome.attempts, f"latched back to {back!r}"
                )
            return outcome
        return self._unlatch(row, sent.status)

    def _unlatch(self, row: Task, read_http: int | None) -> RowOutcome:
        fid = row.fusebill_id
        token = self.rows.intend(row, "", Change.UNDO, row.geotab_id)
        sent = self.rows.loop.call(
            lambda: self.rows.service.unlatch(fid), lambda r: classify_unlatch(r, fid), row.index
        )
        verdict, n = sent.verdict, sent.attempts
        self.rows.sent_or_withdrawn(token, sent)
        if verdict is None:
            return self.rows.stopped(n, sent.status if n else read_http)
        if verdict.kind is Meaning.SUCCESS:
            return self._restored(sent.status, n, "unlatched (it held no geotabId before)")
        if verdict.kind is Meaning.UNPROVEN or sent.ambiguous:
            back, holding = self.rows.read_back(row)
            if back.verdict is None:  # stopped during the read-back: the outcome is unknown
                return self.rows.stopped(n, sent.status)
            if holding is not None and holding.known and holding.geotab_id is None:
                return self._restored(sent.status, n, "unlatched (confirmed by read-back)")
            return self._failed(
                sent.status, f"unlatch not confirmed: {verdict.message}", "unconfirmed", n
            )
        return self._failed(sent.status, verdict.message, verdict.error_key, n)

    def _restored(self, http: int | None, attempts: int, message: str) -> RowOutcome:
        return RowOutcome(
            Status.SUCCESS, http, attempts, message, "", Change.UNDO, "", now_iso(), settles=True
        )

    def _failed(
        self, http: int | None, message: str, key: str, attempts: int = 0, settles: bool = False
    ) -> RowOutcome:
        """A customer left alone; ``settles`` when a read showed what it holds."""
        return RowOutcome(
            Status.FAILED,
            http,
            attempts,
            message,
            key,
            Change.NONE,
            "",
            now_iso(),
            settles=settles,
        )


def undo(
    settings: Settings,
    ledger: Ledger | None,
    *,
    service: FusebillService | None = None,
    progress: Progress | None = None,
    stderr: TextIO | None = None,
) -> LiveOutcome:
    """Undo the job in ``settings.out``; a dry run returns only the columns it would report."""
    err = stderr or sys.stderr
    assert ledger is not None
    found, _, earlier = targets(settings, ledger)
    rows = _latched_rows(ledger, found)
    if settings.dry_run:
        return LiveOutcome(planned_columns(found, settings.unlatch_unknown, rows))
    tasks = [UndoTask(i, found[i]) for i in range(len(found))]
    requests = requests_needed(len(tasks), reads=True, writes=True, read_batch=settings.read_batch)
    session: Session[UndoTask] = Session.open(settings, service, progress, err, planned=requests)
    if not found:
        session.notices.say("Nothing to undo: this job has latched no customer.")
        session.service.close()
        return session.outcome(columns(found, [], rows), "")
    reader = session.open_reader([t.target.fusebill_id for t in tasks])
    journal = LedgerJournal(ledger, lambda i: rows[i].as_py())
    logic = UndoLogic(
        RowLogic(session.service, session.loop, journal=journal, reader=reader),
        settings.unlatch_unknown,
        earlier.unanswered(found.fusebill_ids.tolist()),
    )
    session.notices.say(
        f"Undoing {plural(len(tasks), 'customer')} latched by this job: up to "
        f"{plural(requests, 'request')} ({_reads_words(settings.read_batch)}, then a "
        "write where it still holds what the job set) at up to "
        f"{settings.rate:g} requests/s: {duration(requests / settings.rate)}."
    )

    def done(task: UndoTask, outcome: RowOutcome) -> None:
        if outcome.status.value in RECORDED:
            ledger.record(_entry(task.target, outcome, rows[task.index].as_py()))
        session.progress.row_done(outcome.status.value)

    results = session.send_all(tasks, logic.process, done)
    ledger.flush()
    outcomes, message = session.finish(tasks, results, {})
    return session.outcome(columns(found, outcomes, rows), message)


def _latched_rows(ledger: Ledger, found: Targets) -> pa.Array:
    """Each target's sheet row: the row of the latch undo puts back (null when unknown)."""
    if not len(found):
        return pa.array([], pa.int64())
    got = dict(
        ((int(f), str(g)), r)
        for f, g, r in ledger.query(
            "SELECT fusebill_id, geotab_id, row FROM log WHERE row IS NOT NULL "
            "AND change IN ('new', 'relatch', 'unknown') ORDER BY seq"
        )
    )
    keys = zip(found.fusebill_ids.tolist(), found.set_to.to_pylist())
    return pa.array([got.get((f, g)) for f, g in keys], pa.int64())


def _entry(target: Target, outcome: RowOutcome, row: int | None) -> Entry:
    restored = target.origin.previous if target.origin.known else ""
    ok = outcome.status is Status.SUCCESS
    return Entry(
        target.fusebill_id,
        restored if ok else target.set_to,
        outcome.status.value,
        Change.UNDO.value,  # also when nothing was restored: see Earlier.latest
        target.origin.previous,
        outcome.error_key,
        outcome.http_status,
        outcome.message,
        outcome.finished_at,
        row,
        outcome.settles,
    )


def columns(found: Targets, outcomes: list[RowOutcome], rows: pa.Array) -> ResultColumns:
    """One row per customer: the geotabId the job had set, and what undo put back."""
    n = len(found)
    status, message, key = TextColumn("", n), TextColumn("", n), TextColumn("", n)
    change, finished = TextColumn("", n), TextColumn("", n)
    http, attempts = IntColumn(n, nullable=True), IntColumn(n, nullable=False)
    at = np.arange(n, dtype=np.int64)
    if n:
        status.put(at, pa.array([o.status.value for o in outcomes]))
        message.put(at, pa.array([o.message for o in outcomes]))
        key.put(at, pa.array([o.error_key for o in outcomes]))
        change.put(at, pa.array([o.change.value for o in outcomes]))
        finished.put(at, pa.array([o.finished_at for o in outcomes]))
        http.put(at, pa.array([o.http_status for o in outcomes], pa.int64()))
        attempts.put(at, pa.array([o.attempts for o in outcomes], pa.int64()))
    return _columns(found, status, message, key, change, finished, http, attempts, rows)


def _columns(
    found: Targets,
    status: TextColumn,
    message: TextColumn,
    key: TextColumn,
    change: TextColumn,
    finished: TextColumn,
    http: IntColumn,
    attempts: IntColumn,
    rows: pa.Array,
) -> ResultColumns:
    """``row``: the sheet row of the latch each customer's undo puts back (from the
    ledger), empty when it is not known."""
    return ResultColumns(
        row=rows,
        fusebillId=pc.cast(pa.array(found.fusebill_ids), pa.string()),
        geotabId=found.set_to,
        status=status.array(),
        http_status=http.array(),
        attempts=attempts.array(),
        message=message.array(),
        error_key=key.array(),
        change=change.array(),
        previous_geotabId=found.previous,
        finished_at=finished.array(),
    )


def _reads_words(read_batch: int) -> str:
    """How undo reads its customers: through the list, or one request each."""
    if read_batch > 1:
        return f"reads of up to {plural(read_batch, 'customer')} a request"
    return "a read each"
