"""A live ``run`` or ``plan``: which rows to send, the pool that sends them, their columns.

Rows earlier runs settled are not sent again (see ``earlier``); the rest go through the
worker pool, each row's outcome durable in the checkpoint before it counts as done (a plan
writes nothing to Fusebill and records nothing).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TextIO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.clock import now_iso
from batch_latch.fusebill.answers import Reply
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder.checkpoint import Checkpoint, Record
from batch_latch.jobfolder.earlier import Earlier, Settled
from batch_latch.reports.columns import Builder, LiveOutcome, ResultColumns, RowOutcome
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.decisions import RowLogic, Task, pending
from batch_latch.send.estimate import duration, requests_needed
from batch_latch.send.journal import CheckpointJournal
from batch_latch.send.notices import Notices
from batch_latch.send.pool import Pool, StopSignals
from batch_latch.send.progress import Bar, Progress, Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.stops import stop_message
from batch_latch.send.throttle import Throttle
from batch_latch.settings import Settings
from batch_latch.sheet.validate import Verdicts
from batch_latch.vocab import RECORDED, Change, RunKind, Status, StopReason, plural


class Indexed(Protocol):
    @property
    def index(self) -> int: ...


T = TypeVar("T", bound=Indexed)


class CountingService:
    """The service, counting reads and writes (the summary reports both)."""

    def __init__(self, service: FusebillService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self.reads = self.writes = 0

    def _count(self, read: bool) -> None:
        with self._lock:
            if read:
                self.reads += 1
            else:
                self.writes += 1

    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        self._count(False)
        return self.service.latch(fusebill_id, geotab_id)

    def unlatch(self, fusebill_id: int) -> Reply:
        self._count(False)
        return self.service.unlatch(fusebill_id)

    def customer(self, fusebill_id: int) -> Reply:
        self._count(True)
        return self.service.customer(fusebill_id)

    def customers(self, ids: Sequence[int], page: int = 0) -> Reply:
        self._count(True)  # one read request, however many customers it shows
        return self.service.customers(ids, page)

    def redact(self, text: str) -> str:
        return self.service.redact(text)

    def abort(self) -> None:
        self.service.abort()

    def close(self) -> None:
        self.service.close()


def make_service(settings: Settings) -> FusebillService:
    from batch_latch.fusebill.client import FusebillClient  # the live side pulls in requests

    if settings.api_key is None:
        raise ValueError("a live command needs an API key")
    return FusebillClient(
        settings.base_url,
        settings.api_key.get_secret_value(),
        timeout=settings.timeout,
        env=settings.env,
    )


@dataclass
class Session(Generic[T]):
    """What one live command uses: service, throttle, attempt loop, progress, stderr.

    Generic over the command's task (a run's :class:`Task`, an undo's own), which only needs
    its ``index``: the position of its row in the report."""

    settings: Settings
    service: CountingService
    throttle: Throttle
    loop: AttemptLoop
    progress: Progress
    notices: Notices

    @classmethod
    def open(
        cls,
        settings: Settings,
        service: FusebillService | None,
        progress: Progress | None,
        err: TextIO,
        *,
        planned: int,
    ) -> Session[T]:
        """``planned``: the requests the command expects to send, for the estimate at the
        account's limits once its first answer shows them."""
        bar = progress or (Bar(err) if settings.progress else Silent(err))
        throttle = Throttle(settings.rate, max_requests=settings.max_requests)
        notices = Notices(bar)
        attempts = AttemptLoop(
            throttle,
            RetryPolicy(max_attempts=settings.max_attempts),
            notices,
            wait_for_quota=settings.wait_for_quota,
            planned=planned,
        )
        counted = CountingService(service or make_service(settings))
        return cls(settings, counted, throttle, attempts, bar, notices)

    def send_all(
        self,
        tasks: list[T],
        work: Callable[[T], RowOutcome],
        done: Callable[[T, RowOutcome], None],
    ) -> list[RowOutcome | None]:
        self.progress.start(len(tasks))

        def safely(task: T) -> RowOutcome:
            try:
                return work(task)
            except Exception as exc:  # a bug must cost one row, not the run and its reports
                text = " ".join(self.service.redact(f"{type(exc).__name__}: {exc}").split())
                message = f"internal error (please report it): {text[:200]}"
                return RowOutcome(
                    Status.FAILED, None, 0, message, "internal_error", finished_at=now_iso()
                )

        try:
            with StopSignals.during(self.throttle, self.notices.say, self.service.abort):
                return Pool[T, RowOutcome](self.throttle, self.settings.workers).run(
                    tasks, safely, done
                )
        finally:
            self.progress.close()
            self.service.close()

    def finish(
        self, tasks: list[T], results: list[RowOutcome | None], notes: dict[int, str]
    ) -> tuple[list[RowOutcome], str]:
        """Rows never started are pending (keeping what an earlier run said of them); in an
        outage, so are rows that failed in its streak. Also the stop line, if any."""
        reason = self.throttle.stop_reason
        outage = self.loop.health.rows if reason is StopReason.API_DOWN else set()
        out = []
        for task, outcome in zip(tasks, results):
            if outcome is None:
                outcome = pending(reason)
            if outcome.status is Status.PENDING and task.index in notes:
                # Not reached, or about to be sent when the stop came: the earlier word stays.
                text = f"{outcome.message}; an earlier run said: {notes[task.index]}"
                outcome = dataclasses.replace(outcome, message=text)
            elif outcome.status is Status.FAILED and task.index in outage:
                text = f"{pending(reason).message}; last answer: {outcome.message}"
                outcome = RowOutcome(
                    Status.PENDING, outcome.http_status, outcome.attempts, text, "api_down"
                )
            out.append(outcome)
        waiting = sum(o.status is Status.PENDING for o in out)
        message = stop_message(reason, self.loop.stop, waiting, self.settings.max_requests)
        if message:
            self.notices.say(message)
        return out, message

    def outcome(self, columns: ResultColumns, message: str) -> LiveOutcome:
        return LiveOutcome(
            columns=columns,
            requests=self.throttle.granted,
            reads=self.service.reads,
            writes=self.service.writes,
            requests_by_day=self.throttle.by_day,
            stop_reason=self.throttle.stop_reason,
            stop_message=message,
            limits=self.loop.limits_seen,
        )


def _valid_rows(verdicts: Verdicts) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Positions, fusebillIds and geotabIds of the valid rows."""
    valid = pc.equal(verdicts.status, Status.VALID.value)
    positions = np.flatnonzero(np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool))
    fids, gids = verdicts.fusebill_id, verdicts.geotab
    if len(positions) < len(verdicts):  # else every row is valid: nothing to pick
        take = pa.array(positions)
        fids, gids = pc.take(fids, take), pc.take(gids, take)
    return positions, np.asarray(fids.to_numpy(), dtype=np.int64), gids


def _plan_settled(settled: Settled) -> Settled:
    """A plan shows rows latched earlier as ``valid``: a run would not send them."""
    success = pc.equal(settled.status, Status.SUCCESS.value)
    return Settled(
        where=settled.where,
        status=pc.if_else(success, Status.VALID.value, settled.status),
        http_status=settled.http_status,
        message=pc.if_else(
            success, "latched earlier by this job; a run would not send it", settled.message
        ),
        error_key=settled.error_key,
        change=pc.if_else(success, Change.UNCHANGED.value, settled.change),
        previous=settled.previous,
        finished_at=settled.finished_at,
        notes=settled.notes,
    )


def latch(
    settings: Settings,
    verdicts: Verdicts,
    *,
    service: FusebillService | None = None,
    progress: Progress | None = None,
    stderr: TextIO | None = None,
) -> LiveOutcome:
    """Run (or plan) every valid row that earlier runs did not settle."""
    err = stderr or sys.stderr
    planning = settings.kind is RunKind.PLAN
    store = Checkpoint.open(settings.out, settings.base_url, fresh=settings.fresh)
    try:
        earlier = Earlier(store.records)
        positions, fids, gids = _valid_rows(verdicts)
        settled = earlier.settled(
            fids,
            gids,
            retry_not_found=settings.retry_not_found,
            retry_failed=settings.retry_failed,
        )
        todo = np.ones(len(positions), dtype=bool)
        todo[settled.where] = False
        todo_at = np.flatnonzero(todo)
        texts = pc.take(gids, pa.array(todo_at)).to_pylist() if len(todo_at) else []
        asked = fids[todo_at].tolist() if len(todo_at) else []
        origins, lost = earlier.origins(asked), earlier.unanswered(asked)
        tasks = [
            Task(int(positions[j]), int(fids[j]), text, origins.get(fid), lost.get(fid))
            for j, fid, text in zip(todo_at.tolist(), asked, texts)
        ]
        requests = requests_needed(
            len(tasks), reads=planning or not settings.no_read, writes=not planning
        )
        session: Session[Task] = Session.open(settings, service, progress, err, planned=requests)
        _announce(session, len(tasks), requests, len(settled.where), planning)
        logic = RowLogic(
            session.service,
            session.loop,
            read_first=not settings.no_read,
            allow_relatch=settings.allow_relatch,
            write=not planning,
            journal=None if planning else CheckpointJournal(store),
        )

        def done(task: Task, outcome: RowOutcome) -> None:
            if not planning and outcome.status.value in RECORDED:
                store.record(_record(task, outcome))
            session.progress.row_done(outcome.status.value)

        results = session.send_all(tasks, logic.process, done) if tasks else []
    finally:
        store.close()
    notes = {int(positions[j]): text for j, text in settled.notes.items()}
    outcomes, message = session.finish(tasks, results, notes)
    builder = Builder(verdicts)
    settled_rows = _plan_settled(settled) if planning else settled
    builder.settled(dataclasses.replace(settled_rows, where=positions[settled_rows.where]))
    builder.outcomes([t.index for t in tasks], outcomes)
    return session.outcome(builder.columns(), message)


def _record(task: Task, outcome: RowOutcome) -> Record:
    return Record(
        task.fusebill_id,
        task.geotab_id,
        outcome.status.value,
        outcome.http_status,
        outcome.message,
        outcome.error_key,
        outcome.finished_at,
        outcome.change.value,
        outcome.previous,
    )


def _announce(
    session: Session[Task], rows: int, requests: int, settled: int, planning: bool
) -> None:
    settings = session.settings
    note = f" ({plural(settled, 'row')} settled by earlier runs are not sent again)"
    note = note if settled else ""
    if rows == 0:
        session.notices.say(f"Nothing to send{note}.")
        return
    writes = not planning
    reads = planning or not settings.no_read
    what = "reads" if not writes else ("requests (a read, then a write)" if reads else "requests")
    most = "up to " if reads and writes else ""
    session.notices.say(
        f"{'Planning' if planning else 'Sending'} {plural(rows, 'row')} to {settings.base_url}: "
        f"{most}{requests:,} {what} at up to {settings.rate:g} requests/s with "
        f"{settings.workers} workers: {duration(requests / settings.rate)}{note}. The "
        "account's own limits may add pauses; they are estimated once its first answer "
        "shows them."
    )
