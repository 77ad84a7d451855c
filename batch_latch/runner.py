"""Send every valid row through a pool of workers sharing one throttle, and record each outcome.

Per row: retry what may pass later (408, 5xx, timeouts, dropped connections) with
exponential backoff and jitter; pause everyone on 429 or an exhausted minute window;
stop everything on a rejected key, a spent daily quota, twenty retryable failures in a row
(the API is down), ``--max-requests`` or Ctrl-C. A row's outcome is in the checkpoint
before it counts as done.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch import checkpoint as checkpoint_module
from batch_latch.checkpoint import Checkpoint, Record
from batch_latch.client import FusebillClient, Kind, Reply, classify, limits, retry_after
from batch_latch.config import RunSettings
from batch_latch.errors import CheckpointError
from batch_latch.progress import Bar, Progress, Silent
from batch_latch.report import ResultColumns
from batch_latch.throttle import Throttle
from batch_latch.validate import Verdicts

OUTAGE_STREAK = 20
BACKOFF_BASE = 0.5  # seconds before the 2nd attempt; doubles each time
BACKOFF_CAP = 30.0
RATE_LIMIT_BACKOFF_CAP = 60.0
PAUSE_CUSHION = 0.05  # start a little after a reset, not on its edge

STOP_MESSAGES = {
    "key_rejected": "not sent: Fusebill rejected the API key",
    "daily_quota": "not sent: the daily API quota is spent",
    "api_down": "not finished: the API looked down (20 retryable failures in a row)",
    "max_requests": "not sent: --max-requests was reached",
    "interrupted": "not sent: the run was interrupted (Ctrl-C)",
}


@dataclass(frozen=True)
class Task:
    index: int  # position in the sheet
    row: int
    fusebill_id: int
    geotab_id: str


@dataclass(frozen=True)
class RowOutcome:
    status: str
    http_status: int | None
    attempts: int
    message: str
    error_key: str = ""
    finished_at: str = ""


@dataclass(frozen=True)
class LatchOutcome:
    columns: ResultColumns
    requests: int
    stop_reason: str | None
    stop_message: str
    interrupted: bool


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Health:
    """Counts retryable failures in a row across all workers: twenty means the API is down."""

    def __init__(self, threshold: int = OUTAGE_STREAK) -> None:
        self._lock = threading.Lock()
        self._threshold = threshold
        self.streak = 0
        self.rows: set[int] = set()  # rows whose last answer belongs to the current streak
        self.last_problem = ""

    def failure(self, index: int, what: str) -> bool:
        with self._lock:
            self.streak += 1
            self.rows.add(index)
            self.last_problem = what
            return self.streak >= self._threshold

    def answered(self, index: int) -> None:
        with self._lock:
            self.streak = 0
            self.rows.clear()


@dataclass
class _Stop:
    """Why the run stopped, with what the user needs to know (filled once)."""

    detail: str = ""
    quota_reset: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, detail: str, quota_reset: datetime | None = None) -> None:
        with self.lock:
            if not self.detail:
                self.detail, self.quota_reset = detail, quota_reset


class Runner:
    def __init__(
        self,
        settings: RunSettings,
        client: FusebillClient,
        throttle: Throttle,
        checkpoint: Checkpoint,
        progress: Progress,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.throttle = throttle
        self.checkpoint = checkpoint
        self.progress = progress
        self.health = _Health()
        self.stop = _Stop()
        self._rng = rng or random.Random()
        self._rate_limited = 0  # consecutive 429s, for the backoff when no header says
        self._lock = threading.Lock()

    # --- the pool --------------------------------------------------------------------------

    def run(self, tasks: list[Task]) -> list[RowOutcome | None]:
        results: list[RowOutcome | None] = [None] * len(tasks)
        feed = iter(range(len(tasks)))
        feed_lock = threading.Lock()

        def work() -> None:
            while self.throttle.stop_reason is None:
                with feed_lock:
                    k = next(feed, None)
                if k is None:
                    return
                outcome = self._process_safely(tasks[k])
                if outcome.status in checkpoint_module.RECORDED:
                    task = tasks[k]
                    self.checkpoint.record(
                        Record(
                            task.fusebill_id,
                            task.geotab_id,
                            outcome.status,
                            outcome.http_status,
                            outcome.message,
                            outcome.error_key,
                            outcome.finished_at,
                        )
                    )
                results[k] = outcome
                self.progress.row_done(outcome.status)

        workers = [
            threading.Thread(target=work, name=f"latch-{i}", daemon=True)
            for i in range(min(self.settings.workers, max(1, len(tasks))))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.2)
        return results

    def _process_safely(self, task: Task) -> RowOutcome:
        try:
            return self.process(task)
        except CheckpointError:
            raise
        except Exception as exc:  # a bug must cost one row, not the run
            text = self.client.redact(f"{type(exc).__name__}: {exc}")[:200]
            return RowOutcome("failed", None, 0, f"internal error: {text}", "internal_error")

    # --- one row ---------------------------------------------------------------------------

    def process(self, task: Task) -> RowOutcome:
        attempts = failures = 0
        ambiguous = False
        while True:
            if not self.throttle.acquire():
                return self._pending(attempts)
            attempts += 1
            reply = self.client.latch(task.fusebill_id, task.geotab_id)
            verdict = classify(reply, task.geotab_id)
            self._observe_limits(reply)
            if verdict.kind is not Kind.RETRYABLE:
                self.health.answered(task.index)
            if verdict.kind is not Kind.RATE_LIMITED:
                with self._lock:
                    self._rate_limited = 0

            if verdict.kind is Kind.SUCCESS:
                return self._done("success", reply, attempts, "latched", "")
            if verdict.kind is Kind.MISMATCH:
                return self._done("failed", reply, attempts, verdict.message, verdict.error_key)
            if verdict.kind is Kind.NOT_FOUND:
                return self._done("not_found", reply, attempts, verdict.message, verdict.error_key)
            if verdict.kind is Kind.KEY_REJECTED:
                self._stop_for_key(reply, verdict.message)
                return RowOutcome(
                    "pending",
                    reply.status,
                    attempts,
                    f"Fusebill rejected the API key (HTTP {reply.status}: {verdict.message}); "
                    "the run stopped",
                    "key_rejected",
                )
            if verdict.kind is Kind.RATE_LIMITED:
                if self._wait_out_429(reply, verdict.daily_limit):
                    continue
                return self._pending(attempts, reply.status)
            if verdict.kind is Kind.RETRYABLE:
                failures += 1
                ambiguous = ambiguous or verdict.ambiguous
                if self.health.failure(task.index, verdict.message):
                    self.stop.note(f"last problem: {verdict.message}")
                    self.throttle.stop("api_down")
                    return self._pending(attempts, reply.status)
                if failures >= self.settings.max_attempts:
                    return self._done(
                        "failed",
                        reply,
                        attempts,
                        f"gave up after {failures} attempts: {verdict.message}",
                        verdict.error_key,
                    )
                if not self.throttle.sleep(self._backoff(failures)):
                    return self._pending(attempts, reply.status)
                continue
            # Any other 4xx. After an attempt that may have landed, 400/409 can mean "done".
            if ambiguous and reply.status in (400, 409):
                return self._read_back(task, reply, attempts, verdict.message, verdict.error_key)
            return self._done("failed", reply, attempts, verdict.message, verdict.error_key)

    def _read_back(
        self, task: Task, latch_reply: Reply, attempts: int, message: str, error_key: str
    ) -> RowOutcome:
        """Ask Fusebill what the customer holds now: the earlier attempt may have landed."""
        failures = 0
        while True:
            if not self.throttle.acquire():
                return self._pending(attempts, latch_reply.status)
            reply = self.client.customer(task.fusebill_id)
            self._observe_limits(reply)
            verdict = classify(reply, task.geotab_id)
            if verdict.kind is not Kind.RETRYABLE:
                self.health.answered(task.index)
            body = reply.body if isinstance(reply.body, dict) else {}
            if verdict.kind is Kind.SUCCESS and body.get("geotabId") == task.geotab_id:
                return self._done(
                    "success",
                    reply,
                    attempts,
                    f"confirmed by read-back: an earlier attempt had landed (the repeat got "
                    f"HTTP {latch_reply.status}: {message})",
                    "",
                )
            if verdict.kind is Kind.KEY_REJECTED:
                self._stop_for_key(reply, verdict.message)
                return self._pending(attempts, reply.status)
            if verdict.kind is Kind.RATE_LIMITED:
                if self._wait_out_429(reply, verdict.daily_limit):
                    continue
                return self._pending(attempts, reply.status)
            if verdict.kind is Kind.RETRYABLE:
                failures += 1
                if failures < self.settings.max_attempts and self.throttle.sleep(
                    self._backoff(failures)
                ):
                    continue
            holds_other = verdict.kind in (Kind.SUCCESS, Kind.MISMATCH)
            why = "the customer holds another geotabId" if holds_other else verdict.message
            return self._done(
                "failed",
                latch_reply,
                attempts,
                f"{message} (read-back after an unanswered attempt could not confirm: {why})",
                error_key,
            )

    # --- helpers ---------------------------------------------------------------------------

    def _done(
        self, status: str, reply: Reply, attempts: int, message: str, error_key: str
    ) -> RowOutcome:
        return RowOutcome(status, reply.status, attempts, message, error_key, now_iso())

    def _pending(self, attempts: int, http_status: int | None = None) -> RowOutcome:
        reason = self.throttle.stop_reason or "interrupted"
        return RowOutcome(
            "pending", http_status, attempts, STOP_MESSAGES.get(reason, "not sent"), reason
        )

    def _backoff(self, failures: int) -> float:
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
        return float(delay * self._rng.uniform(0.5, 1.0))

    def _observe_limits(self, reply: Reply) -> None:
        if reply.status is None:
            return
        now = datetime.now(timezone.utc)
        seen = limits(reply, now)
        if seen.remaining_minute == 0 and seen.reset_minute is not None:
            self.throttle.pause_for(seen.reset_minute + PAUSE_CUSHION)
        if seen.remaining_day == 0 and reply.status != 429:
            self._stop_for_quota(reply)

    def _wait_out_429(self, reply: Reply, daily: bool) -> bool:
        """True: everyone pauses, then try again. False: the daily quota is spent (stop)."""
        if daily:
            self._stop_for_quota(reply)
            return False
        self._pause_after_429(reply)
        return True

    def _pause_after_429(self, reply: Reply) -> None:
        now = datetime.now(timezone.utc)
        wait = retry_after(reply, now)
        if wait is None:
            seen = limits(reply, now)
            if reply.header("x-rate-limit-reset-minute") is not None:
                wait = seen.reset_minute
        if wait is None:
            with self._lock:
                self._rate_limited += 1
                n = self._rate_limited
            wait = min(RATE_LIMIT_BACKOFF_CAP, 2.0 ** (n - 1)) * self._rng.uniform(0.75, 1.0)
        self.throttle.pause_for(min(wait, 3600.0) + PAUSE_CUSHION)

    def _stop_for_key(self, reply: Reply, message: str) -> None:
        self.stop.note(f"HTTP {reply.status}: {message}")
        self.throttle.stop("key_rejected")

    def _stop_for_quota(self, reply: Reply) -> None:
        self.stop.note("daily quota", limits(reply, datetime.now(timezone.utc)).reset_day_at)
        self.throttle.stop("daily_quota")


# --- the run -------------------------------------------------------------------------------


def latch(
    settings: RunSettings,
    verdicts: Verdicts,
    *,
    progress: Progress | None = None,
    stderr: TextIO | None = None,
) -> LatchOutcome:
    err = stderr or sys.stderr
    if settings.api_key is None:
        raise ValueError("a live run needs an API key")
    store = Checkpoint.open(settings.out, settings.base_url, fresh=settings.fresh)
    try:
        plan = _plan(verdicts, store, settings.retry_not_found)
        client = FusebillClient(
            settings.base_url,
            settings.api_key.get_secret_value(),
            timeout=settings.timeout,
            pool_size=settings.workers,
        )
        throttle = Throttle(settings.rate, max_requests=settings.max_requests)
        bar = progress or (Bar(err) if settings.progress else Silent())
        runner = Runner(settings, client, throttle, store, bar)
        _announce(plan, settings, err)
        bar.start(len(plan.tasks))
        with _ctrl_c(throttle, err):
            results = runner.run(plan.tasks) if plan.tasks else []
        bar.close()
        client.close()
    finally:
        store.close()
    reason = throttle.stop_reason
    outcomes = _finish(results, plan.tasks, runner, reason)
    columns = _columns(verdicts, plan, outcomes)
    message = _stop_message(reason, runner, settings, sum(o.status == "pending" for o in outcomes))
    if message:
        print(message, file=err)
    return LatchOutcome(
        columns=columns,
        requests=throttle.granted,
        stop_reason=reason,
        stop_message=message,
        interrupted=reason == "interrupted",
    )


@dataclass(frozen=True)
class _Plan:
    tasks: list[Task]
    earlier_positions: np.ndarray  # sheet positions settled by an earlier run
    earlier: dict[str, pa.Array]  # their status, http_status, message, error_key, finished_at


def _plan(verdicts: Verdicts, store: Checkpoint, retry_not_found: bool) -> _Plan:
    """Which valid rows to send; earlier successes (and 404s) are settled without a request."""
    valid = pc.equal(verdicts.status, "valid")
    positions = np.flatnonzero(np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool))
    take = pa.array(positions)
    fids = np.asarray(pc.take(verdicts.fusebill_id, take).to_numpy(), dtype=np.int64)
    gids = pc.take(verdicts.geotab, take)
    settled = np.zeros(len(positions), dtype=bool)
    earlier: dict[str, pa.Array] = {}
    earlier_positions = np.array([], dtype=np.int64)
    journal = store.earlier
    if journal.num_rows and len(positions):
        latest = _latest_records(fids, gids, journal)
        found = np.flatnonzero(latest >= 0)
        status = pc.take(journal["s"], pa.array(latest[found]))
        keep = ["success"] if retry_not_found else ["success", "not_found"]
        wanted = pc.is_in(status, value_set=pa.array(keep))
        chosen = np.asarray(wanted.to_numpy(zero_copy_only=False), dtype=bool)
        found, status = found[chosen], status.filter(wanted)
        if len(found):
            settled[found] = True
            earlier_positions = positions[found]
            at = pa.array(latest[found])
            was_success = pc.equal(status, "success")
            message = pc.if_else(
                was_success, "latched in an earlier run (see finished_at); not sent again", ""
            )
            if not pc.all(was_success).as_py():
                missing = np.flatnonzero(~np.asarray(was_success.to_numpy(zero_copy_only=False)))
                texts = pc.take(journal["m"], pa.array(latest[found][missing])).to_pylist()
                notes = [
                    f"not found in an earlier run: {t}; not sent again "
                    "(use --retry-not-found to send it)"
                    for t in texts
                ]
                message = _overlay(_flat(message), missing, pa.array(notes, pa.string()))
            earlier = {
                "status": status,
                "http_status": pc.take(journal["h"], at),
                "message": message,
                "error_key": pc.if_else(was_success, "latched_earlier", "not_found"),
                "finished_at": pc.take(journal["t"], at),
            }
            earlier = {k: _flat(v) for k, v in earlier.items()}
    todo = np.flatnonzero(~settled)
    rows = verdicts.rows.to_numpy()
    texts = pc.take(gids, pa.array(todo)).to_pylist() if len(todo) else []
    tasks = [
        Task(int(positions[j]), int(rows[positions[j]]), int(fids[j]), text)
        for j, text in zip(todo.tolist(), texts)
    ]
    return _Plan(tasks, earlier_positions, earlier)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _latest_records(fids: np.ndarray, gids: pa.Array, journal: pa.Table) -> np.ndarray:
    """For each (fid, gid) pair, the position of its latest journal record, or -1.

    Valid rows have unique fusebillIds (a second geotabId makes them invalid), so match on
    the integer id (Arrow's hash lookup on the reversed journal finds the latest record),
    then check the geotabId; only ids whose latest record names another geotabId (the
    sheet was edited) take the slow, exact path.
    """
    journal_fids = np.asarray(journal["f"].to_numpy(), dtype=np.int64)
    n = len(journal_fids)
    from_end = pc.index_in(pa.array(fids), value_set=pa.array(journal_fids[::-1]))
    hit = np.asarray(pc.fill_null(from_end, -1).to_numpy(), dtype=np.int64)
    latest = np.where(hit >= 0, n - 1 - hit, -1)
    found = np.flatnonzero(latest >= 0)
    if not len(found):
        return latest
    same = pc.equal(pc.take(gids, pa.array(found)), pc.take(journal["g"], pa.array(latest[found])))
    other = found[~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)]
    if len(other):
        latest[other] = -1
        rows = np.flatnonzero(np.isin(journal_fids, fids[other]))
        texts = pc.take(journal["g"], pa.array(rows)).to_pylist()
        exact = {(int(journal_fids[r]), t): int(r) for r, t in zip(rows.tolist(), texts)}
        asked = pc.take(gids, pa.array(other)).to_pylist()
        for j, text in zip(other.tolist(), asked):
            latest[j] = exact.get((int(fids[j]), text), -1)
    return latest


def _finish(
    results: list[RowOutcome | None], tasks: list[Task], runner: Runner, reason: str | None
) -> list[RowOutcome]:
    """Rows never started are pending; in an outage, so are rows that failed in its streak."""
    never = RowOutcome(
        "pending", None, 0, STOP_MESSAGES.get(reason or "", "not sent"), reason or ""
    )
    outage_rows = runner.health.rows if reason == "api_down" else set()
    out = []
    for task, outcome in zip(tasks, results):
        if outcome is None:
            outcome = never
        elif outcome.status == "failed" and task.index in outage_rows:
            outcome = RowOutcome(
                "pending",
                outcome.http_status,
                outcome.attempts,
                f"{STOP_MESSAGES['api_down']}; last answer: {outcome.message}",
                "api_down",
            )
        out.append(outcome)
    return out


def _overlay(base: pa.Array, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """``base`` with ``values`` put at ``positions`` (a vectorised scatter)."""
    if len(positions) == 0:
        return base
    index = np.arange(len(base), dtype=np.int64)
    index[positions] = len(base) + np.arange(len(positions), dtype=np.int64)
    merged = pa.chunked_array([base, values.cast(base.type)]).combine_chunks()
    return pc.take(merged, pa.array(index))


def _columns(verdicts: Verdicts, plan: _Plan, outcomes: list[RowOutcome]) -> ResultColumns:
    n = len(verdicts)
    status = verdicts.status
    http = pa.nulls(n, pa.int64())
    attempts: pa.Array = pc.fill_null(pa.nulls(n, pa.int64()), 0)
    message = verdicts.message
    error_key = verdicts.error_key
    finished = pc.fill_null(pa.nulls(n, pa.string()), "")
    if len(plan.earlier_positions):
        e, at = plan.earlier, plan.earlier_positions
        status = _overlay(status, at, e["status"])
        http = _overlay(http, at, e["http_status"])
        message = _overlay(message, at, e["message"])
        error_key = _overlay(error_key, at, e["error_key"])
        finished = _overlay(finished, at, e["finished_at"])
    if plan.tasks:
        at = np.array([t.index for t in plan.tasks], dtype=np.int64)

        def column(get: Callable[[RowOutcome], Any], kind: pa.DataType) -> pa.Array:
            return pa.array([get(o) for o in outcomes], type=kind)

        status = _overlay(status, at, column(lambda o: o.status, pa.string()))
        http = _overlay(http, at, column(lambda o: o.http_status, pa.int64()))
        attempts = _overlay(attempts, at, column(lambda o: o.attempts, pa.int64()))
        message = _overlay(message, at, column(lambda o: o.message, pa.string()))
        error_key = _overlay(error_key, at, column(lambda o: o.error_key, pa.string()))
        finished = _overlay(finished, at, column(lambda o: o.finished_at, pa.string()))
    return ResultColumns(
        row=verdicts.rows,
        fusebillId=verdicts.fusebill,
        geotabId=verdicts.geotab,
        status=status,
        http_status=http,
        attempts=attempts,
        message=message,
        error_key=error_key,
        finished_at=finished,
    )


def _announce(plan: _Plan, settings: RunSettings, err: TextIO) -> None:
    n = len(plan.tasks)
    if n == 0:
        print(
            f"Nothing to send ({len(plan.earlier_positions)} rows settled by earlier runs).",
            file=err,
            flush=True,
        )
        return
    seconds = n / settings.rate
    if seconds < 60:
        eta = "under a minute"
    elif seconds < 3600:
        eta = f"about {int(seconds // 60)} min"
    else:
        eta = f"about {int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    earlier = len(plan.earlier_positions)
    note = f" ({earlier} rows settled by earlier runs are not sent again)" if earlier else ""
    print(
        f"Sending {n} rows to {settings.base_url} at up to {settings.rate:g} requests/s "
        f"with {settings.workers} workers: {eta}{note}.",
        file=err,
        flush=True,
    )


def _stop_message(reason: str | None, runner: Runner, settings: RunSettings, pending: int) -> str:
    if reason is None:
        return ""
    again = "Run the same command again to continue."
    if reason == "key_rejected":
        return (
            f"Stopped: Fusebill rejected the API key ({runner.stop.detail}); nothing more was "
            f"sent and {pending} rows are pending. Check FUSEBILL_API_KEY, then: {again}"
        )
    if reason == "daily_quota":
        when = runner.stop.quota_reset
        at = when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else "unknown"
        return (
            f"Stopped: the daily API quota is spent; it resets at {at}. {pending} rows are "
            f"pending. After that: {again}"
        )
    if reason == "api_down":
        return (
            f"Stopped: the API looks down ({OUTAGE_STREAK} retryable failures in a row; "
            f"{runner.stop.detail}). {pending} rows are pending. Later: {again}"
        )
    if reason == "max_requests":
        return (
            f"Stopped after --max-requests {settings.max_requests} requests; {pending} rows are "
            f"pending. {again}"
        )
    return f"Interrupted: {pending} rows are pending; reports are written. {again}"


class _ctrl_c:
    """First Ctrl-C: no new requests, in-flight ones finish. Second: leave at once."""

    def __init__(self, throttle: Throttle, err: TextIO) -> None:
        self._throttle = throttle
        self._err = err
        self._previous: Any = None
        self._active = threading.current_thread() is threading.main_thread()
        self._count = 0

    def _handle(self, signum: int, frame: object) -> None:
        self._count += 1
        if self._count > 1:
            os._exit(130)  # every recorded outcome is already fsynced
        self._throttle.stop("interrupted")
        print(
            "\nStopping: waiting for requests in flight (Ctrl-C again to quit at once)...",
            file=self._err,
            flush=True,
        )

    def __enter__(self) -> _ctrl_c:
        if self._active:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
