"""Undo's row logic, beside a run's (``decisions.RowLogic``), through the same loop.

For a customer the job latched: read it; if it still holds what the job set, restore it
(``UnlatchCustomer`` when it held none, ``LatchCustomer`` with the previous geotabId
otherwise); a customer changed since is left alone; one that already holds what it held
before counts as restored without a write, so an interrupted undo never unlatches twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from batch_latch.clock import now_iso
from batch_latch.fusebill.answers import Meaning, classify_unlatch
from batch_latch.jobfolder.rerun_rules import Target, Unanswered
from batch_latch.outcome import RowOutcome
from batch_latch.send.decisions import RowLogic, Task
from batch_latch.vocab import Change, ErrorKey, RowKey, Status


@dataclass(frozen=True)
class UndoTask:
    index: int
    target: Target


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
                ErrorKey.UNKNOWN_PREVIOUS,
            )
        sent, holding = self.rows.read(row)
        verdict = sent.verdict
        if verdict is None:
            return self.rows.stopped(0, sent.status)
        if verdict.kind is Meaning.NOT_FOUND:
            return self.rows.outcome(
                Status.NOT_FOUND, sent.status, 0, verdict.message, ErrorKey.NOT_FOUND
            )
        if verdict.kind is not Meaning.SUCCESS or holding is None:
            return self._failed(
                sent.status, f"could not read the customer: {verdict.message}", ErrorKey.UNREADABLE
            )
        if not holding.known:
            return self._failed(
                sent.status,
                "left alone: this API does not show the customer's geotabId, so undo cannot "
                "check that it still holds what this job set",
                ErrorKey.CANNOT_CHECK,
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
                ErrorKey.CHANGED_SINCE,
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
            shown = holding is not None and holding.known  # a read settles what it holds
            return self._failed(
                sent.status,
                f"unlatch not confirmed: {verdict.message}",
                ErrorKey.UNCONFIRMED,
                n,
                shown,
            )
        return self._failed(sent.status, verdict.message, verdict.error_key, n)

    def _restored(self, http: int | None, attempts: int, message: str) -> RowOutcome:
        return RowOutcome(
            Status.SUCCESS,
            http,
            attempts,
            message,
            ErrorKey.NONE,
            Change.UNDO,
            "",
            now_iso(),
            settles=True,
        )

    def _failed(
        self, http: int | None, message: str, key: RowKey, attempts: int = 0, settles: bool = False
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
