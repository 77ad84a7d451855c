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

    def failure(self, index: int) -> bool:
        with self._lock:
            self.streak += 1
            self.rows.add(index)
            return self.streak >= self._threshold

    def answered(self) -> None:
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
        errors: list[BaseException] = []

        def work() -> None:
            try:
                feed_rows()
            except BaseException as exc:  # the checkpoint failed: stop all, raise in main
                errors.append(exc)
                self.throttle.stop("checkpoint_error")

        def feed_rows() -> None:
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
        if errors:
            raise errors[0]
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
                self.health.answered()
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
                if self.health.failure(task.index):
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
                self.health.answered()
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
class _Earlier:
    """Rows settled by an earlier run: where they are and what that run recorded."""

    positions: np.ndarray  # sheet positions
    success: np.ndarray  # bool: True = latched earlier, False = 404 earlier
    http_status: pa.Array  # int64 (nullable)
    finished_at: pa.Array  # string
    not_found_notes: list[str]  # one message per False in ``success``, in order

    @classmethod
    def none(cls) -> _Earlier:
        empty = np.array([], dtype=np.int64)
        return cls(
            empty, empty.astype(bool), pa.array([], pa.int64()), pa.array([], pa.string()), []
        )


@dataclass(frozen=True)
class _Plan:
    tasks: list[Task]
    earlier: _Earlier


EARLIER_SUCCESS = "latched earlier; not sent again"


def _plan(verdicts: Verdicts, store: Checkpoint, retry_not_found: bool) -> _Plan:
    """Which valid rows to send; earlier successes (and 404s) are settled without a request."""
    valid = pc.equal(verdicts.status, "valid")
    positions = np.flatnonzero(np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool))
    fids, gids = verdicts.fusebill_id, verdicts.geotab
    if len(positions) < len(verdicts):  # else every row is valid: nothing to pick
        take = pa.array(positions)
        fids, gids = pc.take(fids, take), pc.take(gids, take)
    fids = np.asarray(fids.to_numpy(), dtype=np.int64)
    settled = np.zeros(len(positions), dtype=bool)
    earlier = _Earlier.none()
    journal = store.earlier
    if journal.num_rows and len(positions):
        latest = _latest_records(fids, gids, journal)
        found = np.flatnonzero(latest >= 0)
        status = _flat(pc.take(journal["s"], pa.array(latest[found])))
        success = np.asarray(pc.equal(status, "success").to_numpy(zero_copy_only=False))
        wanted = success.copy()
        if not retry_not_found:
            wanted |= np.asarray(pc.equal(status, "not_found").to_numpy(zero_copy_only=False))
        found, success = found[wanted], success[wanted]
        if len(found):
            settled[found] = True
            at = pa.array(latest[found])
            notes = [
                f"not found in an earlier run: {text}; not sent again "
                "(use --retry-not-found to send it)"
                for text in pc.take(journal["m"], pa.array(latest[found][~success])).to_pylist()
            ]
            earlier = _Earlier(
                positions=positions[found],
                success=success,
                http_status=_flat(pc.take(journal["h"], at)),
                finished_at=_flat(pc.take(journal["t"], at)),
                not_found_notes=notes,
            )
    todo = np.flatnonzero(~settled)
    rows = verdicts.rows.to_numpy()
    texts = pc.take(gids, pa.array(todo)).to_pylist() if len(todo) else []
    tasks = [
        Task(int(positions[j]), int(rows[positions[j]]), int(fids[j]), text)
        for j, text in zip(todo.tolist(), texts)
    ]
    return _Plan(tasks, earlier)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _latest_records(fids: np.ndarray, gids: pa.Array, journal: pa.Table) -> np.ndarray:
    """For each (fid, gid) pair, the position of its latest journal record, or -1.

    Valid rows have unique fusebillIds (a second geotabId makes them invalid), so match on
    the integer id (a stable sort of the journal and a binary search find the latest
    record), then check the geotabId; only ids whose latest record names another geotabId (the
    sheet was edited) take the slow, exact path.
    """
    journal_fids = np.asarray(journal["f"].to_numpy(), dtype=np.int64)
    order = np.argsort(journal_fids, kind="stable")  # equal ids keep the order written
    ordered = journal_fids[order]
    last = np.searchsorted(ordered, fids, side="right") - 1  # the latest of equal ids
    hit = (last >= 0) & (ordered[np.maximum(last, 0)] == fids)
    latest = np.where(hit, order[np.maximum(last, 0)], -1)
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


class _TextColumn:
    """A text column kept as dictionary codes, so a value repeated a million times (the same
    status or message) costs a million small integers, not a million strings."""

    def __init__(self, base: pa.Array | str, n: int) -> None:
        if isinstance(base, str):
            self._parts, self.codes = [pa.array([base], pa.string())], np.zeros(n, np.int32)
        else:
            encoded = base if pa.types.is_dictionary(base.type) else pc.dictionary_encode(base)
            self._parts = [encoded.dictionary.cast(pa.string())]
            self.codes = np.array(encoded.indices.to_numpy(zero_copy_only=False), np.int32)
        self._size = len(self._parts[0])

    def put(self, positions: np.ndarray, values: pa.Array | str) -> None:
        if not len(positions):
            return
        if isinstance(values, str):
            values = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(positions), np.int32)), pa.array([values], pa.string())
            )
        encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
        indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32)
        self.codes[positions] = indices + self._size
        self._parts.append(encoded.dictionary.cast(pa.string()))
        self._size += len(encoded.dictionary)

    def array(self) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(self.codes), pa.concat_arrays(self._parts))


class _IntColumn:
    def __init__(self, n: int, *, nullable: bool) -> None:
        self.values = np.zeros(n, np.int64)
        self.missing = np.ones(n, bool) if nullable else None

    def put(self, positions: np.ndarray, values: pa.Array) -> None:
        if not len(positions):
            return
        self.values[positions] = np.asarray(pc.fill_null(values, 0).to_numpy(), np.int64)
        if self.missing is not None:
            known = values.is_valid().to_numpy(zero_copy_only=False)
            self.missing[positions] = ~np.asarray(known, dtype=bool)

    def array(self) -> pa.Array:
        return pa.array(self.values, mask=self.missing)


def _columns(verdicts: Verdicts, plan: _Plan, outcomes: list[RowOutcome]) -> ResultColumns:
    n = len(verdicts)
    status = _TextColumn(verdicts.status, n)
    message = _TextColumn(verdicts.message, n)
    error_key = _TextColumn(verdicts.error_key, n)
    finished = _TextColumn("", n)
    http = _IntColumn(n, nullable=True)
    attempts = _IntColumn(n, nullable=False)

    e = plan.earlier
    done, missing = e.positions[e.success], e.positions[~e.success]
    status.put(done, "success")
    status.put(missing, "not_found")
    message.put(done, EARLIER_SUCCESS)
    message.put(missing, pa.array(e.not_found_notes, pa.string()))
    error_key.put(done, "latched_earlier")
    error_key.put(missing, "not_found")
    finished.put(e.positions, e.finished_at)
    http.put(e.positions, e.http_status)

    if plan.tasks:
        at = np.array([t.index for t in plan.tasks], dtype=np.int64)

        def column(get: Callable[[RowOutcome], Any], kind: pa.DataType) -> pa.Array:
            return pa.array([get(o) for o in outcomes], type=kind)

        status.put(at, column(lambda o: o.status, pa.string()))
        http.put(at, column(lambda o: o.http_status, pa.int64()))
        attempts.put(at, column(lambda o: o.attempts, pa.int64()))
        message.put(at, column(lambda o: o.message, pa.string()))
        error_key.put(at, column(lambda o: o.error_key, pa.string()))
        finished.put(at, column(lambda o: o.finished_at, pa.string()))
    return ResultColumns(
        row=verdicts.rows,
        fusebillId=verdicts.fusebill,
        geotabId=verdicts.geotab,
        status=status.array(),
        http_status=http.array(),
        attempts=attempts.array(),
        message=message.array(),
        error_key=error_key.array(),
        finished_at=finished.array(),
    )


def _announce(plan: _Plan, settings: RunSettings, err: TextIO) -> None:
    n = len(plan.tasks)
    if n == 0:
        print(
            f"Nothing to send ({len(plan.earlier.positions)} rows settled by earlier runs).",
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
    # The account's own limits are only known from its answers (50 a minute on Fusebill
    # sandbox accounts): the estimate is for --rate, and says so.
    if n > 50:
        eta += ", plus any pauses the account's rate limits call for"
    earlier = len(plan.earlier.positions)
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
