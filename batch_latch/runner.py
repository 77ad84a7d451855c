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
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.answers import Reply
from batch_latch.attempts import Attempts
from batch_latch.checkpoint import Checkpoint, Record
from batch_latch.earlier import Earlier, Settled
from batch_latch.notices import Notices, duration
from batch_latch.pool import CtrlC, Pool
from batch_latch.progress import Bar, Progress, Silent
from batch_latch.results import Builder, LiveOutcome, ResultColumns
from batch_latch.retry import RetryPolicy
from batch_latch.rows import RowLogic, RowOutcome, Task, now_iso, pending
from batch_latch.service import FusebillService
from batch_latch.settings import Settings
from batch_latch.stops import stop_message
from batch_latch.throttle import Throttle
from batch_latch.validate import Verdicts
from batch_latch.vocab import RECORDED, Change, Kind, Status, StopReason


class Counted:
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

    def close(self) -> None:
        self.service.close()


def make_service(settings: Settings) -> FusebillService:
    from batch_latch.client import FusebillClient  # the live side pulls in requests

    if settings.api_key is None:
        raise ValueError("a live command needs an API key")
    return FusebillClient(
        settings.base_url,
        settings.api_key.get_secret_value(),
        timeout=settings.timeout,
        env=settings.env,
    )


@dataclass
class Session:
    """What one live command uses: service, throttle, attempt loop, progress, stderr."""

    settings: Settings
    service: Counted
    throttle: Throttle
    attempts: Attempts
    progress: Progress
    notices: Notices

    @classmethod
    def open(
        cls,
        settings: Settings,
        service: FusebillService | None,
        progress: Progress | None,
        err: TextIO,
    ) -> Session:
        bar = progress or (Bar(err) if settings.progress else Silent(err))
        throttle = Throttle(settings.rate, max_requests=settings.max_requests)
        notices = Notices(bar)
        attempts = Attempts(
            throttle,
            RetryPolicy(max_attempts=settings.max_attempts),
            notices,
            wait_for_quota=settings.wait_for_quota,
        )
        counted = Counted(service or make_service(settings))
        return cls(settings, counted, throttle, attempts, bar, notices)

    def send_all(
        self,
        tasks: list[Task],
        work: Callable[[Task], RowOutcome],
        done: Callable[[Task, RowOutcome], None],
    ) -> list[RowOutcome | None]:
        self.progress.start(len(tasks))
        abort = getattr(self.service.service, "abort", None)

        def safely(task: Task) -> RowOutcome:
            try:
                return work(task)
            except Exception as exc:  # a bug must cost one row, not the run and its reports
                text = " ".join(self.service.redact(f"{type(exc).__name__}: {exc}").split())
                message = f"internal error (please report it): {text[:200]}"
                return RowOutcome(
                    Status.FAILED, None, 0, message, "internal_error", finished_at=now_iso()
                )

        try:
            with CtrlC(self.throttle, self.notices.say, abort):
                return Pool[Task, RowOutcome](self.throttle, self.settings.workers).run(
                    tasks, safely, done
                )
        finally:
            self.progress.close()
            self.service.close()

    def finish(
        self, tasks: list[Task], results: list[RowOutcome | None], notes: dict[int, str]
    ) -> tuple[list[RowOutcome], str]:
        """Rows never started are pending (keeping what an earlier run said of them); in an
        outage, so are rows that failed in its streak. Also the stop line, if any."""
        reason = self.throttle.stop_reason
        outage = self.attempts.health.rows if reason is StopReason.API_DOWN else set()
        out = []
        for task, outcome in zip(tasks, results):
            if outcome is None:
                outcome = pending(reason)
                if task.index in notes:
                    text = f"{outcome.message}; an earlier run said: {notes[task.index]}"
                    outcome = RowOutcome(Status.PENDING, None, 0, text, outcome.error_key)
            elif outcome.status is Status.FAILED and task.index in outage:
                text = f"{pending(reason).message}; last answer: {outcome.message}"
                outcome = RowOutcome(
                    Status.PENDING, outcome.http_status, outcome.attempts, text, "api_down"
                )
            out.append(outcome)
        waiting = sum(o.status is Status.PENDING for o in out)
        message = stop_message(reason, self.attempts.stop, waiting, self.settings.max_requests)
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
            limits=self.attempts.limits_seen,
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
    planning = settings.kind is Kind.PLAN
    store = Checkpoint.open(settings.out, settings.base_url, fresh=settings.fresh)
    try:
        earlier = Earlier(store.earlier)
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
        origins = earlier.origins(fids[todo_at].tolist()) if len(todo_at) else {}
        tasks = [
            Task(int(positions[j]), int(fids[j]), text, origins.get(int(fids[j])))
            for j, text in zip(todo_at.tolist(), texts)
        ]
        session = Session.open(settings, service, progress, err)
        _announce(session, len(tasks), len(settled.where), planning)
        logic = RowLogic(
            session.service,
            session.attempts,
            read_first=not settings.no_read,
            allow_relatch=settings.allow_relatch,
            write=not planning,
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


def _announce(session: Session, rows: int, settled: int, planning: bool) -> None:
    settings = session.settings
    note = f" ({settled} rows settled by earlier runs are not sent again)" if settled else ""
    if rows == 0:
        session.notices.say(f"Nothing to send{note}.")
        return
    per_row = 1 if settings.no_read or planning else 2
    requests = rows * per_row
    session.attempts.planned = requests
    what = (
        "reads" if planning else ("requests" if per_row == 1 else "requests (a read, then a write)")
    )
    most = "" if per_row == 1 else "up to "
    session.notices.say(
        f"{'Planning' if planning else 'Sending'} {rows} rows to {settings.base_url}: "
        f"{most}{requests} {what} at up to {settings.rate:g} requests/s with "
        f"{settings.workers} workers: {duration(requests / settings.rate)}{note}. The "
        "account's own limits may add pauses; they are estimated once its first answer "
        "shows them."
    )
