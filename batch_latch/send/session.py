"""What one live command uses: the counted service, the throttle, the attempt loop, the
reads, progress and stderr; and the worker pool run over its tasks with the signals handled.
``run``, ``plan`` and ``undo`` each open one."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TextIO, TypeVar

from batch_latch import tracebacks
from batch_latch.clock import now_iso
from batch_latch.fusebill.answers import Reply
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder.ledger import Entry, Ledger, LedgerWriteError
from batch_latch.outcome import LiveOutcome, ResultColumns, RowOutcome
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.decisions import pending
from batch_latch.send.notices import Notices
from batch_latch.send.options import EngineOptions
from batch_latch.send.pool import Pool, StopSignals
from batch_latch.send.progress import Bar, Progress, Silent
from batch_latch.send.reads import Reader
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.stops import stop_message
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import ErrorKey, Status, StopReason

#: Rows a bug failed whose tracebacks are kept (the rest only count).
ROW_TRACEBACKS = 5


def _made_pending(failed: Entry, outcome: RowOutcome) -> Entry:
    """The line that makes a kept failure pending (an outage's streak), settling nothing."""
    return dataclasses.replace(
        failed,
        status=outcome.status.value,
        error_key=outcome.error_key,
        message=outcome.message,
        settles=False,
    )


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


def make_service(options: EngineOptions) -> FusebillService:
    from batch_latch.fusebill.client import FusebillClient  # the live side pulls in requests

    if options.api_key is None:
        raise ValueError("a live command needs an API key")
    return FusebillClient(
        options.base_url,
        options.api_key.get_secret_value(),
        timeout=options.timeout,
        env=options.env,
    )


@dataclass
class Session(Generic[T]):
    """What one live command uses: service, throttle, attempt loop, progress, stderr.

    Generic over the command's task (a run's :class:`Task`, an undo's own), which only needs
    its ``index``: the position of its row in the report."""

    options: EngineOptions
    service: CountingService
    throttle: Throttle
    loop: AttemptLoop
    progress: Progress
    notices: Notices
    reader: Reader | None = None
    row_errors: list[str] = dataclasses.field(default_factory=list)
    _errors_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        options: EngineOptions,
        service: FusebillService | None,
        progress: Progress | None,
        err: TextIO,
        *,
        planned: int,
    ) -> Session[T]:
        """``planned``: the requests the command expects to send, for the estimate at the
        account's limits once its first answer shows them."""
        bar = progress or (Bar(err) if options.progress else Silent(err))
        throttle = Throttle(options.rate, max_requests=options.max_requests)
        notices = Notices(bar)
        counted = CountingService(service or make_service(options))
        attempts = AttemptLoop(
            throttle,
            RetryPolicy(max_attempts=options.max_attempts),
            notices,
            wait_for_quota=options.wait_for_quota,
            planned=planned,
            reserve=options.reserve,
            on_quota_wait=options.on_quota_wait,
            redact=counted.redact,
        )
        return cls(options, counted, throttle, attempts, bar, notices)

    def open_reader(self, order: list[int], *, reads: bool = True) -> Reader:
        """The reads of this command, ``--read-batch`` customers a request, in task order."""
        self.reader = Reader(
            self.service,
            self.loop,
            self.notices,
            order=order,
            base_url=self.options.base_url,
            read_batch=self.options.read_batch if reads else 1,
        )
        return self.reader

    def drive(
        self,
        tasks: list[T],
        work: Callable[[T], RowOutcome],
        ledger: Ledger,
        entry: Callable[[T, RowOutcome], Entry | None],
        *,
        after: Callable[[RowOutcome], None] | None = None,
        notes: dict[int, str] | None = None,
    ) -> tuple[list[RowOutcome], str]:
        """The one loop of run, plan and undo: every task through the pool, each outcome
        in the ledger (``entry``: how, or None to keep none) before it counts as done, the
        ledger flushed, then the rows not reached made pending. Also the stop line."""

        def done(task: T, outcome: RowOutcome) -> None:
            kept = entry(task, outcome)
            if kept is not None:
                ledger.record(kept)
            if after is not None:
                after(outcome)
            self.progress.row_done(outcome.status.value)

        try:
            results = self.send_all(tasks, work, done) if tasks else []
            outcomes, message = self.finish(tasks, results, notes or {})
            for task, sent, final in zip(tasks, results, outcomes):
                if (
                    sent is not None
                    and sent.status is Status.FAILED
                    and final.status is Status.PENDING
                ):
                    # An outage made the row pending after its failure was kept: the ledger
                    # says so too, or status would count it failed while the report says pending.
                    kept = entry(task, sent)
                    if kept is not None:
                        ledger.record(_made_pending(kept, final))
            ledger.flush()
        except LedgerWriteError as exc:
            if self.throttle.granted:
                raise
            raise exc.nothing_sent() from None
        return outcomes, message

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
                kept = tracebacks.text_of(exc, self.service.redact)
                with self._errors_lock:  # workers fail at once: a few are enough to find it
                    if len(self.row_errors) < ROW_TRACEBACKS:
                        self.row_errors.append(kept)
                message = f"internal error (please report it): {text[:200]}"
                return RowOutcome(
                    Status.FAILED, None, 0, message, ErrorKey.INTERNAL_ERROR, finished_at=now_iso()
                )

        try:
            with StopSignals.during(self.throttle, self.notices.say, self.service.abort):
                return Pool[T, RowOutcome](self.throttle, self.options.workers).run(
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
            if outcome.status is Status.PENDING and not outcome.attempts and task.index in notes:
                # Not reached, or stopped between its read and its write: nothing of this
                # run's changes what the earlier run said of it.
                text = f"{outcome.message}; an earlier run said: {notes[task.index]}"
                outcome = dataclasses.replace(outcome, message=text)
            elif outcome.status is Status.FAILED and task.index in outage:
                text = f"{pending(reason).message}; last answer: {outcome.message}"
                outcome = RowOutcome(
                    Status.PENDING, outcome.http_status, outcome.attempts, text, StopReason.API_DOWN
                )
            out.append(outcome)
        waiting = sum(o.status is Status.PENDING for o in out)
        message = stop_message(reason, self.loop.stop, waiting, self.options.max_requests)
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
            customers_read=self.reader.customers_read if self.reader else 0,
            row_errors=tuple(self.row_errors),
        )
