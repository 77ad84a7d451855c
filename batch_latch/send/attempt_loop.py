"""The one attempt loop every request goes through: latch, read and unlatch alike.

Per request: wait for the shared throttle, send, judge the answer; pause every worker on a
429 or a used-up minute window; retry what may pass later with backoff and jitter; stop the
whole run on a rejected key, a configuration problem (TLS, proxy, redirect, wrong URL), a
spent daily quota, a long pause, ten minutes of 429s or an outage. What to do with the
final answer is the caller's business.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from batch_latch.fusebill.answers import Meaning, Reply, ReplyError, Verdict, host_port
from batch_latch.fusebill.ratelimits import limits, retry_after
from batch_latch.optiontypes import QuotaReserve
from batch_latch.send.estimate import Pace
from batch_latch.send.notices import Notices, both_times
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import ErrorKey, StopReason, plural

NO_RESERVE = QuotaReserve("0", count=0)


@dataclass(frozen=True)
class Sent:
    """The final answer to one request after its attempts, and what they cost."""

    verdict: Verdict | None  # None: the run stopped first (the row stays pending)
    reply: Reply | None  # the last answer, if any
    attempts: int  # requests sent, 429s included
    ambiguous: bool = False  # some attempt may have landed without a good answer
    exhausted: bool = False  # gave up after --max-attempts retryable answers

    @property
    def status(self) -> int | None:
        return None if self.reply is None else self.reply.status


@dataclass
class StopNote:
    """Why the run stopped, in words, with the quota reset time when that was the cause."""

    detail: str = ""
    resume_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: ``host:port`` when the stop is an outage in which no answer ever came (every
    #: connection failed): likely a wrong FUSEBILL_BASE_URL rather than an API that is down.
    unreachable: str = ""
    #: The daily stop came at this tool's reserve (``--quota-reserve``), not at the
    #: account's own end of the day; ``detail`` then says how much was left.
    at_reserve: bool = False

    def note(self, detail: str, resume_at: datetime | None = None) -> None:
        with self.lock:
            if not self.detail:
                self.detail, self.resume_at = detail, resume_at


@dataclass(frozen=True)
class QuotaWait:
    """A wait for the daily quota's reset starts (``--wait-for-quota``)."""

    until: datetime  # when the quota resets (UTC)
    requests: int  # requests this command has sent so far


#: Told once per reset time, from the worker that met the spent quota; it must not raise
#: (the command's caller passes one in: ``send`` knows nothing of what it does with it).
QuotaHook = Callable[[QuotaWait], None]


class Health:
    """Retryable failures in a row across all workers: ``streak`` of them means the API is down."""

    def __init__(self, streak: int) -> None:
        self._lock = threading.Lock()
        self._threshold = streak
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


class AttemptLoop:
    def __init__(
        self,
        throttle: Throttle,
        policy: RetryPolicy,
        notices: Notices,
        *,
        wait_for_quota: bool = False,
        rng: random.Random | None = None,
        planned: int = 0,
        reserve: QuotaReserve = NO_RESERVE,
        on_quota_wait: QuotaHook | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.redact = redact  # the key out of any text an exception carries
        self.reserve = reserve
        self.throttle = throttle
        self.policy = policy
        self.notices = notices
        self.health = Health(policy.outage_streak)
        self.stop = StopNote()
        self.limits_seen: tuple[int | None, int | None] = (None, None)
        self.planned = planned  # requests the command expects to send, for the estimate
        self.rate = throttle.rate
        self._wait_for_quota = wait_for_quota
        self._on_quota_wait = on_quota_wait
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._streak_429 = 0
        self._first_429: float | None = None
        self._answered = False  # some request got an HTTP answer

    def call(
        self, send: Callable[[], Reply], judge: Callable[[Reply], Verdict], index: int
    ) -> Sent:
        attempts = failures = 0
        ambiguous = False
        reply: Reply | None = None
        while True:
            if not self.throttle.acquire():
                return Sent(None, reply, attempts, ambiguous)
            attempts += 1
            reply, verdict = _answer(send, judge, self.redact)
            self._answered = self._answered or reply.status is not None
            self._observe(reply)
            if verdict.kind is not Meaning.RATE_LIMITED:
                self._clear_429s()
            if verdict.kind is not Meaning.RETRYABLE:
                self.health.answered()
            if verdict.kind is Meaning.RATE_LIMITED:
                if self._wait_out_429(reply, verdict):
                    continue
                return Sent(None, reply, attempts, ambiguous)
            if verdict.kind is Meaning.RETRYABLE:
                failures += 1
                ambiguous = ambiguous or verdict.ambiguous
                if self.health.failure(index):
                    if not self._answered and verdict.error_key is ErrorKey.CONNECTION:
                        self.stop.unreachable = host_port(reply.url)
                    self._halt(StopReason.API_DOWN, f"last problem: {verdict.message}")
                    return Sent(None, reply, attempts, ambiguous)
                if failures >= self.policy.max_attempts:
                    if not self._answered and verdict.error_key is ErrorKey.CONNECTION:
                        # no answer ever came: the URL, not the row (a list read too)
                        self.stop.unreachable = host_port(reply.url)
                        self._halt(StopReason.API_DOWN, f"last problem: {verdict.message}")
                        return Sent(None, reply, attempts, ambiguous)
                    return Sent(verdict, reply, attempts, ambiguous, exhausted=True)
                if not self.throttle.sleep(self.policy.backoff(failures, self._rng)):
                    return Sent(None, reply, attempts, ambiguous)
                continue
            if verdict.kind is Meaning.KEY_REJECTED:
                self._halt(StopReason.KEY_REJECTED, f"HTTP {reply.status}: {verdict.message}")
                return Sent(None, reply, attempts, ambiguous)
            if verdict.kind is Meaning.STOP:
                self._halt(verdict.stop or StopReason.WRONG_URL, verdict.message)
                return Sent(None, reply, attempts, ambiguous)
            return Sent(verdict, reply, attempts, ambiguous)

    # --- stops and pauses ------------------------------------------------------------------

    def _halt(self, reason: StopReason, detail: str, resume_at: datetime | None = None) -> None:
        self.stop.note(detail, resume_at)
        self.throttle.stop(reason)

    def _pause(self, seconds: float, cause: str) -> None:
        if self.throttle.pause_for(seconds):
            self.notices.pause(seconds, cause)

    def _observe(self, reply: Reply) -> None:
        if reply.status is None:
            return
        seen = limits(reply, datetime.now(timezone.utc))
        if seen.limit_minute is not None or seen.limit_day is not None:
            self.limits_seen = (seen.limit_minute, seen.limit_day)
            left = max(0, self.planned - self.throttle.granted)
            kept = self.reserve.of(seen.limit_day)
            resets_in = None
            if seen.reset_day_at is not None:
                resets_in = max(
                    0.0, (seen.reset_day_at - datetime.now(timezone.utc)).total_seconds()
                )
            pace = Pace(
                self.rate, seen.limit_minute, seen.limit_day, kept, seen.remaining_day, resets_in
            )
            self.notices.estimate(left, pace)
        if seen.remaining_minute == 0 and seen.reset_minute is not None:
            self._pause(
                seen.reset_minute + self.policy.cushion,
                "this minute's API limit is used up (X-Rate-Limit-Remaining-Minute: 0)",
            )
        kept = self.reserve.of(seen.limit_day or self.limits_seen[1])
        if seen.remaining_day is not None and seen.remaining_day <= kept and reply.status != 429:
            self._daily_quota(reply, kept)

    def _daily_quota(self, reply: Reply, kept: int = 0) -> bool:
        """The daily quota is spent (for this tool: down to the reserve ``kept``): wait for
        its reset (True) or stop the run (False)."""
        now = datetime.now(timezone.utc)
        reset = limits(reply, now).reset_day_at
        left = self._reserve_words(kept)
        if not self._wait_for_quota:
            self.stop.at_reserve = bool(left)
            self._halt(StopReason.DAILY_QUOTA, left or "daily quota", reset)
            return False
        if reset is None or reset <= now:  # unknown: the next UTC midnight
            reset = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        seconds = (reset - now).total_seconds() + self.policy.cushion
        if self.throttle.pause_for(seconds):
            # Answers in flight name the same reset: say it once per reset time.
            told = self.notices.once(
                f"quota {reset:%Y-%m-%dT%H:%M}",
                f"The daily API quota is spent{' for this tool (' + left + ')' if left else ''}; "
                f"waiting until it resets at {both_times(reset)} "
                "(--wait-for-quota). Ctrl-C stops the run; running the same command later "
                "goes on where it stopped.",
            )
            self.notices.pause(seconds, "the daily API quota is spent")
            if told and self._on_quota_wait is not None:
                self._on_quota_wait(QuotaWait(reset, self.throttle.granted))
        return True

    def _reserve_words(self, kept: int) -> str:
        if not kept:
            return ""
        given = f" ({self.reserve.text})" if self.reserve.percent is not None else ""
        return f"reserve: {plural(kept, 'request')}{given} left for other integrations"

    def _wait_out_429(self, reply: Reply, verdict: Verdict) -> bool:
        """True: every worker pauses, then this request is tried again. False: the run stops."""
        if verdict.daily_limit:
            return self._daily_quota(reply)
        now = datetime.now(timezone.utc)
        asked = retry_after(reply, now)
        cause = "the API answered 429 (too many requests)"
        if asked is None and reply.header("x-rate-limit-reset-minute") is not None:
            asked = limits(reply, now).reset_minute
        if asked is not None and asked > self.policy.long_pause:
            self._halt(
                StopReason.LONG_PAUSE,
                f"the API asked to wait {asked / 60:.0f} minutes",
                now + timedelta(seconds=asked),
            )
            return False
        with self._lock:
            self._streak_429 += 1
            streak = self._streak_429
            clock = time.monotonic()
            if self._first_429 is None:
                self._first_429 = clock
            storm = clock - self._first_429 >= self.policy.storm_limit
        if storm:
            self._halt(StopReason.RATE_LIMITED, "ten minutes of 429 answers, nothing got through")
            return False
        self._pause(self.policy.rate_limit_pause(streak, asked, self._rng), cause)
        return True

    def _clear_429s(self) -> None:
        with self._lock:
            self._streak_429 = 0
            self._first_429 = None


def _answer(
    send: Callable[[], Reply], judge: Callable[[Reply], Verdict], redact: Callable[[str], str]
) -> tuple[Reply, Verdict]:
    """Send and judge. Anything that goes wrong while the answer is read or judged (a
    malformed body, a protocol error, a bug) is an answer of unknown outcome: retried, and
    a write is read back before its row is given up, never taken as a final failure."""
    reply: Reply | None = None
    try:
        reply = send()
        return reply, judge(reply)
    except Exception as exc:
        text = " ".join(redact(f"{type(exc).__name__}: {exc}").split())[:200]
        got = reply or Reply(None, error=ReplyError.INTERNAL, detail=text)
        message = f"the answer could not be read ({text})"
        return got, Verdict(Meaning.RETRYABLE, message, ErrorKey.UNREADABLE_ANSWER, ambiguous=True)
