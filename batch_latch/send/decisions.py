"""One row of a run or a plan: read the customer, decide, latch, and prove the latch landed.

The decision table (contract v2, "Read before write"):

=====================  =======================  ==================================
the read finds         run                      plan
=====================  =======================  ==================================
404 (Fusebill format)  not_found                not_found
the same geotabId      success, ``unchanged``   valid, ``unchanged``
none                   latch, ``new``           valid, ``new``
another                failed ``relatch_refused`` (latch with --allow-relatch)  valid, ``relatch``
no geotabId key        latch, ``unknown``       valid, ``unknown``
anything else          retried, then failed ``unreadable``; never written blind
=====================  =======================  ==================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from batch_latch.clock import now_iso
from batch_latch.fusebill.answers import (
    Holding,
    Meaning,
    classify_latch,
)
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder.plans import PlanEntry
from batch_latch.jobfolder.rerun_rules import Origin, Unanswered
from batch_latch.outcome import RowOutcome
from batch_latch.plan_words import relatch_message, row_message
from batch_latch.send.attempt_loop import AttemptLoop, Sent
from batch_latch.send.plan_rule import Call, against_plan
from batch_latch.send.reads import STALE_AFTER, Read, Reader
from batch_latch.vocab import PENDING_MESSAGES, Change, ErrorKey, RowKey, Status, StopReason, plural

NO_GEOTAB_FIELD = (
    "Note: this API's customer records do not show a geotabId, so what each customer held "
    "before cannot be checked or recorded; rows are latched with change 'unknown' and undo "
    "cannot restore them."
)


@dataclass(frozen=True)
class Task:
    index: int  # position in the sheet
    fusebill_id: int
    geotab_id: str
    origin: Origin | None = None  # what the customer held before this job first changed it
    unanswered: Unanswered | None = None  # a latch of an earlier run whose answer was lost
    planned: PlanEntry | None = None  # run --plan: what the plan showed for this row


class Journal(Protocol):
    """Where a command records its writes before they are sent (the ledger)."""

    def intend(self, task: Task, geotab_id: str, change: Change, previous: str) -> int:
        """Durable before the request leaves: the customer, what is being written
        (``""``: an unlatch), what the read showed it held. Returns a token for
        :meth:`withdraw`."""

    def withdraw(self, token: int) -> None:
        """The write never left (or was refused before it could land): take it back."""

    def landed(self, task: Task, unanswered: Unanswered) -> None:
        """An earlier run's latch whose answer was lost is seen to have landed."""


def pending(reason: StopReason | None, attempts: int = 0, http: int | None = None) -> RowOutcome:
    why = reason or StopReason.INTERRUPTED
    return RowOutcome(Status.PENDING, http, attempts, PENDING_MESSAGES[why], why)


class RowLogic:
    """Decides and carries out one row; ``write=False`` is the plan (reads only)."""

    def __init__(
        self,
        service: FusebillService,
        loop: AttemptLoop,
        *,
        read_first: bool = True,
        allow_relatch: bool = False,
        write: bool = True,
        journal: Journal | None = None,
        reader: Reader | None = None,
        apply_plan: bool = False,
    ) -> None:
        self.apply_plan = apply_plan  # run --plan: write only what the plan showed
        self.journal = journal
        self.reader = reader or Reader(service, loop, loop.notices, order=(), read_batch=1)
        self.service = service
        self.loop = loop
        self.read_first = read_first
        self.allow_relatch = allow_relatch
        self.write = write

    def _stale(self, read_at: float) -> bool:
        """A read too old to write on (a pause since): on the reader's own clock."""
        return self.reader.clock() - read_at > STALE_AFTER

    def stopped(self, latches: int = 0, http: int | None = None) -> RowOutcome:
        return pending(self.loop.throttle.stop_reason, latches, http)  # settles nothing

    def outcome(
        self,
        status: Status,
        http: int | None,
        attempts: int,
        message: str,
        key: RowKey = ErrorKey.NONE,
        change: Change = Change.NONE,
        previous: str = "",
        *,
        settles: bool = True,
    ) -> RowOutcome:
        """An outcome Fusebill's answer decided (``settles``), unless said otherwise."""
        return RowOutcome(
            status, http, attempts, message, key, change, previous, now_iso(), settles=settles
        )

    def read(self, task: Task) -> tuple[Sent, Holding | None]:
        """The read before a write: through the customer list when it can be trusted."""
        got = self.reader.read(task.fusebill_id, task.index)
        return got.sent, got.holding

    def read_back(self, task: Task) -> tuple[Sent, Holding | None]:
        """A read-back after a write: always the customer alone, read now."""
        got = self.reader.alone(task.fusebill_id, task.index)
        return got.sent, got.holding

    def process(self, task: Task) -> RowOutcome:
        origin = task.origin
        if not self.read_first and self.write:  # a plan always reads: it writes nothing
            return self.latch(task, Change.UNKNOWN, origin.previous if origin else "")
        return self._after_read(task, self.reader.read(task.fusebill_id, task.index))

    def _after_read(self, task: Task, got: Read) -> RowOutcome:
        sent, holding = got.sent, got.holding
        verdict = sent.verdict
        if verdict is None:
            return self.stopped(0, sent.status)
        if verdict.kind is Meaning.NOT_FOUND:
            return self.outcome(
                Status.NOT_FOUND, sent.status, 0, verdict.message, ErrorKey.NOT_FOUND
            )
        if verdict.kind is not Meaning.SUCCESS or holding is None:
            return self.outcome(
                Status.FAILED,
                sent.status,
                0,
                f"could not read the customer, so nothing was written: {verdict.message}",
                ErrorKey.UNREADABLE if verdict.kind is Meaning.RETRYABLE else verdict.error_key,
                settles=False,
            )
        if self.apply_plan:
            return self._by_plan(task, holding, sent.status, got.at)
        outcome = self._decide(task, holding, sent.status, got.at)
        if not self.write:  # a plan keeps what it read, for run --plan
            held = (holding.geotab_id or "") if holding.known else None
            outcome = dataclasses.replace(outcome, held=held)
        return outcome

    def _by_plan(
        self, task: Task, holding: Holding, http: int | None, read_at: float
    ) -> RowOutcome:
        """run --plan: write only when the customer holds exactly what the plan saw."""
        lost = task.unanswered
        if lost is not None and lost.geotab_id == task.geotab_id == holding.geotab_id:
            return self._landed_earlier(task, lost, holding, http, read_at)
        ruling = against_plan(task.planned, task.geotab_id, holding)
        origin = task.origin
        if ruling.call is Call.UNCHANGED:
            earlier = origin.previous if origin else ""
            message = "already holds this geotabId; nothing to write"
            return self.outcome(
                Status.SUCCESS, http, 0, message, ErrorKey.NONE, Change.UNCHANGED, earlier
            )
        now = (holding.geotab_id or "") if holding.known else ""
        if ruling.call is Call.STALE:
            return self.outcome(
                Status.FAILED, http, 0, ruling.message, ErrorKey.STALE_PLAN, Change.NONE, now
            )
        if self._stale(read_at):
            return self._after_read(task, self.reader.alone(task.fusebill_id, task.index))
        previous = origin.previous if origin else now
        return self.latch(task, ruling.change, previous, holding.geotab_id, read_http=http)

    def _decide(
        self, task: Task, holding: Holding, http: int | None, read_at: float | None = None
    ) -> RowOutcome:
        lost = task.unanswered
        if lost is not None and holding.known and holding.geotab_id == lost.geotab_id:
            return self._landed_earlier(task, lost, holding, http, read_at)
        origin = task.origin
        held = holding.geotab_id
        if not holding.known:
            self.loop.notices.once("no_geotab_field", NO_GEOTAB_FIELD)
            change, previous = Change.UNKNOWN, origin.previous if origin else ""
        elif held == task.geotab_id:
            earlier = origin.previous if origin else ""
            return self.outcome(
                Status.VALID if not self.write else Status.SUCCESS,
                http,
                0,
                "already holds this geotabId; nothing to write",
                ErrorKey.NONE,
                Change.UNCHANGED,
                earlier,
            )
        elif held is None:
            change, previous = Change.NEW, origin.previous if origin else ""
        else:
            change, previous = Change.RELATCH, origin.previous if origin else held
            if not self.allow_relatch:
                return self.outcome(
                    Status.VALID if not self.write else Status.FAILED,
                    http,
                    0,
                    relatch_message(held)
                    if not self.write
                    else f"the customer holds geotabId {held!r}; "
                    "not replaced (use --allow-relatch to replace it)",
                    ErrorKey.NONE if not self.write else ErrorKey.RELATCH_REFUSED,
                    Change.NONE if self.write else Change.RELATCH,  # a run: nothing was done
                    previous,
                )
        if not self.write:
            return self.outcome(
                Status.VALID, http, 0, row_message(change, held), ErrorKey.NONE, change, previous
            )
        if read_at is not None and self._stale(read_at):
            # Read too long ago (a pause since): read it again, alone, before writing.
            return self._after_read(task, self.reader.alone(task.fusebill_id, task.index))
        return self.latch(task, change, previous, held, read_http=http)

    def _landed_earlier(
        self,
        task: Task,
        lost: Unanswered,
        holding: Holding,
        http: int | None,
        read_at: float | None,
    ) -> RowOutcome:
        """The customer holds what an earlier run of this job was writing when its answer
        was lost: that latch is this job's change, with the previous value it read."""
        previous = task.origin.previous if task.origin else lost.previous
        if task.geotab_id == lost.geotab_id:
            return self.outcome(
                Status.SUCCESS if self.write else Status.VALID,
                http,
                0,
                "latched by an earlier run whose answer was lost (the read shows it)",
                ErrorKey.NONE,
                lost.change,
                previous,
            )
        if self.write and self.journal is not None:
            self.journal.landed(task, lost)
        origin = Origin(previous, known=lost.change is not Change.UNKNOWN)
        settled = dataclasses.replace(task, origin=origin, unanswered=None)
        return self._decide(settled, holding, http, read_at)

    def intend(self, task: Task, geotab_id: str, change: Change, previous: str) -> int | None:
        if self.journal is None:
            return None
        return self.journal.intend(task, geotab_id, change, previous)

    def sent_or_withdrawn(self, token: int | None, sent: Sent) -> bool:
        """Whether the write may have landed; if it cannot have (it never left, or every
        attempt was answered without a doubt and the command stopped), its intent is taken
        back, so a write that never left is never shown as sent."""
        may_have = sent.attempts > 0 and (sent.verdict is not None or sent.ambiguous)
        if not may_have and token is not None and self.journal is not None:
            self.journal.withdraw(token)
        return may_have

    def latch(
        self,
        task: Task,
        change: Change,
        previous: str,
        held: str | None = None,
        *,
        read_http: int | None = None,
    ) -> RowOutcome:
        """Latch and prove it; ``read_http`` is the status of the row's read, if any: a row
        stopped before its first latch request reports that (its last answer)."""
        gid = task.geotab_id
        token = self.intend(task, gid, change, previous)
        sent = self.loop.call(
            lambda: self.service.latch(task.fusebill_id, gid),
            lambda reply: classify_latch(reply, gid, task.fusebill_id),
            task.index,
        )
        verdict, n = sent.verdict, sent.attempts
        self.sent_or_withdrawn(token, sent)
        if verdict is None:
            return self.stopped(n, sent.status if n else read_http)

        def done(
            status: Status, message: str, key: RowKey = ErrorKey.NONE, settles: bool = True
        ) -> RowOutcome:
            kept = change if status is Status.SUCCESS else Change.NONE
            return self.outcome(
                status, sent.status, n, message, key, kept, previous, settles=settles
            )

        replaced = f"; replaced {held!r}" if change is Change.RELATCH and held else ""
        if verdict.kind is Meaning.SUCCESS:
            return done(Status.SUCCESS, f"latched{replaced}")
        if verdict.kind is Meaning.NOT_FOUND:
            return done(Status.NOT_FOUND, verdict.message, ErrorKey.NOT_FOUND)
        if verdict.kind is Meaning.UNPROVEN:
            why = f"the answer (HTTP {sent.status}) did not show the latch: {verdict.message}"
            return self.confirm(task, sent, why, ErrorKey.UNCONFIRMED, done)
        if sent.ambiguous and (
            sent.exhausted or (verdict.kind is Meaning.REJECTED and sent.status in (400, 409))
        ):
            why = verdict.message
            if sent.exhausted:
                why = f"gave up after {plural(n, 'attempt')}: {why}"
            return self.confirm(task, sent, why, verdict.error_key, done)
        if sent.exhausted:
            return done(
                Status.FAILED,
                f"gave up after {plural(n, 'attempt')}: {verdict.message}",
                verdict.error_key,
                not sent.ambiguous,
            )
        return done(Status.FAILED, verdict.message, verdict.error_key, not sent.ambiguous)

    def confirm(
        self,
        task: Task,
        latch: Sent,
        why: str,
        key: RowKey,
        done: Callable[[Status, str, RowKey, bool], RowOutcome],
    ) -> RowOutcome:
        """Read the customer back: the latch counts only if the customer now holds it."""
        sent, holding = self.read_back(task)
        if sent.verdict is None:
            return self.stopped(latch.attempts, latch.status)
        if sent.verdict.kind is Meaning.SUCCESS and holding is not None and holding.known:
            if holding.geotab_id == task.geotab_id:
                return done(Status.SUCCESS, f"confirmed by read-back ({why})", ErrorKey.NONE, True)
            if holding.geotab_id is not None:
                return done(
                    Status.FAILED,
                    f"{why}; read-back: the customer holds {holding.geotab_id!r}, "
                    f"not {task.geotab_id!r}",
                    ErrorKey.GEOTAB_ID_MISMATCH,
                    True,
                )
        shown = sent.verdict.kind is Meaning.SUCCESS and holding is not None and holding.known
        found = "holds no geotabId" if shown else sent.verdict.message
        # A read-back that showed the customer settles the write; one that failed leaves it
        # possibly landed (open), for the next command's read and for undo.
        return done(Status.FAILED, f"{why}; read-back could not confirm: {found}", key, shown)
