"""The one attempt loop: 429 pauses, retries, outages and the stops that end a run."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from batch_latch.fusebill.answers import Meaning, Reply, ReplyError, classify_latch
from batch_latch.send.attempt_loop import AttemptLoop, Health, QuotaWait, Sent, StopNote
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import StopReason
from tests.doubles import FakeFusebill, customer_object, error, html, rate_limited, wait_for

FID = 1000001
GID = "0909909"
FAST = RetryPolicy(
    max_attempts=5, backoff_base=0.001, backoff_cap=0.005, pause_floor=0.001, cushion=0.0
)


class RecordingThrottle(Throttle):
    """A real throttle that remembers every pause asked of it."""

    def __init__(self, rate: float = 10_000.0) -> None:
        super().__init__(rate)
        self.pauses: list[float] = []

    def pause_for(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return super().pause_for(seconds)


def loop(
    policy: RetryPolicy = FAST, *, wait_for_quota: bool = False
) -> tuple[AttemptLoop, RecordingThrottle, io.StringIO]:
    throttle = RecordingThrottle()
    stderr = io.StringIO()
    attempts = AttemptLoop(throttle, policy, Notices(Silent(stderr)), wait_for_quota=wait_for_quota)
    return attempts, throttle, stderr


def latch(attempts: AttemptLoop, fake: FakeFusebill, index: int = 0, fid: int = FID) -> Sent:
    return attempts.call(lambda: fake.latch(fid, GID), lambda r: classify_latch(r, GID), index)


def ok() -> Reply:
    return customer_object(FID, GID)


# --- 429 -------------------------------------------------------------------------------------


def test_a_429_does_not_use_up_attempts() -> None:
    fake = FakeFusebill().script(
        "latch", FID, rate_limited("0"), rate_limited("0"), error(503, "busy"), ok()
    )
    attempts, throttle, _ = loop(RetryPolicy(max_attempts=2, backoff_base=0.001, pause_floor=0.001))
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert sent.attempts == 4  # every request counts, 429s included
    assert throttle.stop_reason is None


def test_a_429_pauses_every_worker() -> None:
    fake = FakeFusebill().script("latch", FID, rate_limited("0.3"), ok())
    attempts, throttle, _ = loop()
    first: list[Sent] = []
    worker = threading.Thread(target=lambda: first.append(latch(attempts, fake)))
    worker.start()
    wait_for(lambda: throttle.paused_until > 0, what="the 429 pause")
    pause_end = throttle.paused_until
    other = latch(attempts, fake, index=1, fid=FID + 1)  # another worker, another customer
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert other.verdict is not None and first[0].verdict is not None
    later = [c for c in fake.calls if c.fusebill_id == FID + 1]
    assert len(later) == 1
    assert later[0].at >= pause_end - 0.01  # it waited for the pause the 429 set
    assert pause_end - fake.calls[0].at >= 0.29


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"x-rate-limit-reset-minute": "PAST"},  # a reset a few seconds past
    ],
    ids=["retry-after-0", "reset-in-the-past"],
)
def test_the_pause_floor_grows_while_429s_continue(headers: dict[str, str]) -> None:
    policy = RetryPolicy(max_attempts=5, pause_floor=0.01, cushion=0.0, rate_limit_cap=1.0)
    if headers.get("x-rate-limit-reset-minute") == "PAST":
        headers = {"x-rate-limit-reset-minute": f"{time.time() - 5:.3f}"}
    answer = Reply(429, {"Errors": [{"Value": "Rate limit exceeded"}]}, headers)
    fake = FakeFusebill().script("latch", FID, answer, answer, answer, answer, ok())
    attempts, throttle, _ = loop(policy)
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert throttle.pauses == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert all(p >= policy.pause_floor for p in throttle.pauses)


def test_the_429_streak_starts_over_after_an_answer() -> None:
    policy = RetryPolicy(max_attempts=5, pause_floor=0.01, cushion=0.0)
    fake = FakeFusebill().script("latch", FID, rate_limited("0"), rate_limited("0"), ok())
    fake.script("latch", FID, rate_limited("0"), ok())
    attempts, throttle, _ = loop(policy)
    latch(attempts, fake)
    latch(attempts, fake)
    assert throttle.pauses == pytest.approx([0.01, 0.02, 0.01])


def test_a_storm_of_429s_stops_the_run() -> None:
    policy = RetryPolicy(pause_floor=0.002, rate_limit_cap=0.01, storm_limit=0.05, cushion=0.0)
    fake = FakeFusebill(max_calls=1000).always("latch", lambda f: rate_limited("0"))
    attempts, throttle, _ = loop(policy)
    started = time.monotonic()
    sent = latch(attempts, fake)
    assert sent.verdict is None
    assert throttle.stop_reason is StopReason.RATE_LIMITED
    assert "429" in attempts.stop.detail
    assert time.monotonic() - started >= policy.storm_limit
    assert sent.attempts == len(fake.calls) >= 2
    # Nothing more starts.
    assert not throttle.acquire()


def test_a_pause_asked_over_the_long_pause_limit_stops_the_run() -> None:
    policy = RetryPolicy(long_pause=1.0)
    fake = FakeFusebill().script("latch", FID, rate_limited("5"), ok())
    attempts, throttle, _ = loop(policy)
    before = datetime.now(timezone.utc)
    sent = latch(attempts, fake)
    assert sent.verdict is None and sent.attempts == 1
    assert throttle.stop_reason is StopReason.LONG_PAUSE
    resume = attempts.stop.resume_at
    assert resume is not None
    assert before + timedelta(seconds=4) <= resume <= before + timedelta(seconds=7)
    assert throttle.pauses == []


def test_the_default_long_pause_is_fifteen_minutes() -> None:
    fake = FakeFusebill().script("latch", FID, rate_limited(str(15 * 60 + 1)))
    attempts, throttle, _ = loop(RetryPolicy())
    assert latch(attempts, fake).verdict is None
    assert throttle.stop_reason is StopReason.LONG_PAUSE


# --- the daily quota -------------------------------------------------------------------------


def daily(reset: datetime) -> Reply:
    """A 429 whose body names the daily limit, with the reset time in epoch seconds."""
    return Reply(
        429,
        {"Errors": [{"Value": "Daily rate limit exceeded: 5000 requests per day"}]},
        {"x-rate-limit-reset-day": f"{reset.timestamp():.3f}"},
    )


def test_a_spent_daily_quota_stops_and_says_when_it_resets() -> None:
    reset = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    fake = FakeFusebill().script("latch", FID, daily(reset), ok())
    attempts, throttle, _ = loop()
    sent = latch(attempts, fake)
    assert sent.verdict is None and sent.attempts == 1
    assert throttle.stop_reason is StopReason.DAILY_QUOTA
    assert attempts.stop.resume_at == reset


def test_remaining_day_zero_on_a_success_keeps_the_row_and_stops_the_rest() -> None:
    answer = Reply(200, {"id": FID, "geotabId": GID}, {"x-rate-limit-remaining-day": "0"})
    fake = FakeFusebill().script("latch", FID, answer)
    attempts, throttle, _ = loop()
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert throttle.stop_reason is StopReason.DAILY_QUOTA
    assert not throttle.acquire()


def test_wait_for_quota_waits_for_the_reset_and_goes_on() -> None:
    reset = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    fake = FakeFusebill().script("latch", FID, daily(reset), ok())
    attempts, throttle, stderr = loop(wait_for_quota=True)
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert throttle.stop_reason is None
    assert sent.attempts == 2
    assert fake.calls[1].at - fake.calls[0].at >= 0.2
    assert "--wait-for-quota" in stderr.getvalue()


def test_a_quota_wait_calls_the_hook_it_was_given_with_its_reset_time() -> None:
    reset = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    fake = FakeFusebill().script("latch", FID, daily(reset), ok())
    told: list[QuotaWait] = []
    attempts = AttemptLoop(RecordingThrottle(), FAST, Notices(Silent(io.StringIO())),
                           wait_for_quota=True, on_quota_wait=told.append)  # fmt: skip
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert len(told) == 1 and abs((told[0].until - reset).total_seconds()) < 1.0
    assert told[0].requests >= 1
    other = AttemptLoop(RecordingThrottle(), FAST, Notices(Silent(io.StringIO())),
                        wait_for_quota=True)  # fmt: skip
    again = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    latch(other, FakeFusebill().script("latch", FID, daily(again), ok()))
    assert len(told) == 1  # a loop without the hook tells nobody: no hook travels implicitly


# --- outages and stops -----------------------------------------------------------------------


def test_twenty_retryable_failures_in_a_row_mean_the_api_is_down() -> None:
    policy = RetryPolicy(max_attempts=100, backoff_base=0.0001, backoff_cap=0.0001)
    fake = FakeFusebill().always("latch", lambda f: error(503, "Service Unavailable"))
    attempts, throttle, _ = loop(policy)
    sent = latch(attempts, fake, index=7)
    assert sent.verdict is None
    assert sent.attempts == 20 == policy.outage_streak
    assert throttle.stop_reason is StopReason.API_DOWN
    assert "Service Unavailable" in attempts.stop.detail
    assert attempts.health.rows == {7}


def test_the_outage_streak_counts_across_rows_and_an_answer_resets_it() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.0001, outage_streak=5)
    fake = FakeFusebill({FID + 9: None}).always("latch", lambda f: error(502, "bad gateway"))
    attempts, throttle, _ = loop(policy)
    assert latch(attempts, fake, index=0, fid=FID).verdict is not None  # 3 failures: exhausted
    assert attempts.health.streak == 3
    # An answer (a 404 here) ends the streak.
    fake.script("latch", FID + 1, Reply(404, {"HttpStatusCode": 404, "Errors": [{"Value": "no"}]}))
    assert latch(attempts, fake, index=1, fid=FID + 1).verdict is not None
    assert attempts.health.streak == 0 and attempts.health.rows == set()
    assert latch(attempts, fake, index=2, fid=FID + 2).verdict is not None
    assert latch(attempts, fake, index=3, fid=FID + 3).verdict is None  # 3 + 2 = 5
    assert throttle.stop_reason is StopReason.API_DOWN
    assert attempts.health.rows == {2, 3}


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_stops_at_once(status: int) -> None:
    fake = FakeFusebill().script("latch", FID, error(status, "Invalid API key"))
    attempts, throttle, _ = loop()
    sent = latch(attempts, fake)
    assert sent.verdict is None and sent.attempts == 1 and sent.status == status
    assert throttle.stop_reason is StopReason.KEY_REJECTED
    assert f"HTTP {status}" in attempts.stop.detail


@pytest.mark.parametrize(
    ("reply", "reason", "words"),
    [
        (
            Reply(302, "", {"location": "https://elsewhere.test/v1"}),
            StopReason.REDIRECT,
            "elsewhere",
        ),
        (html(404, "Not Found"), StopReason.WRONG_URL, "FUSEBILL_BASE_URL"),
        (html(405, "Method Not Allowed"), StopReason.WRONG_URL, "FUSEBILL_BASE_URL"),
        (
            Reply(None, error=ReplyError.TLS, detail="certificate has expired"),
            StopReason.TLS,
            "expired",
        ),
        (Reply(407, "proxy says no"), StopReason.PROXY, "HTTPS_PROXY"),
    ],
    ids=["redirect", "plain-404", "plain-405", "tls", "proxy"],
)
def test_a_stop_verdict_stops_with_its_reason(reply: Reply, reason: StopReason, words: str) -> None:
    fake = FakeFusebill().script("latch", FID, reply, ok())
    attempts, throttle, _ = loop()
    sent = latch(attempts, fake)
    assert sent.verdict is None and sent.attempts == 1
    assert throttle.stop_reason is reason
    assert words in attempts.stop.detail
    assert len(fake.calls) == 1


def test_nothing_is_sent_once_the_run_has_stopped() -> None:
    fake = FakeFusebill()
    attempts, throttle, _ = loop()
    throttle.stop(StopReason.INTERRUPTED)
    sent = latch(attempts, fake)
    assert (sent.verdict, sent.reply, sent.attempts) == (None, None, 0)
    assert fake.calls == []


def test_a_stop_during_backoff_ends_the_wait() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_base=30.0, backoff_cap=30.0)
    fake = FakeFusebill().always("latch", lambda f: error(503, "busy"))
    attempts, throttle, _ = loop(policy)

    def stop_after_the_first_request() -> None:
        wait_for(lambda: len(fake.calls) == 1, what="the first request")
        throttle.stop(StopReason.INTERRUPTED)

    stopper = threading.Thread(target=stop_after_the_first_request)
    stopper.start()
    started = time.monotonic()
    sent = latch(attempts, fake)
    stopper.join(timeout=10)
    assert sent.verdict is None and sent.attempts == 1
    assert time.monotonic() - started < 10  # not the 15-30 s backoff


def spent_minute(reset_in: float) -> Reply:
    """A latch's answer that used up the minute's window, which frees in ``reset_in`` s."""
    return Reply(
        200,
        {"id": FID, "geotabId": GID},
        {
            "x-rate-limit-remaining-minute": "0",
            "x-rate-limit-reset-minute": f"{time.time() + reset_in:.3f}",
        },
    )


def test_a_used_up_minute_window_pauses_everyone_until_its_reset() -> None:
    fake = FakeFusebill().script("latch", FID, spent_minute(0.2))
    attempts, throttle, _ = loop()
    assert latch(attempts, fake).verdict is not None
    assert len(throttle.pauses) == 1
    assert 0.05 <= throttle.pauses[0] <= 0.3
    assert throttle.paused_until > 0


def test_first_stop_note_wins() -> None:
    note = StopNote()
    note.note("first", None)
    note.note("second", datetime.now(timezone.utc))
    assert (note.detail, note.resume_at) == ("first", None)


def test_health_threshold() -> None:
    health = Health(2)
    assert health.failure(1) is False
    assert health.failure(2) is True
    health.answered()
    assert (health.streak, health.rows) == (0, set())


class NoticingThrottle(RecordingThrottle):
    """Remembers every pause asked of it without pausing: the loop goes on at once."""

    def pause_for(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return True


@pytest.mark.parametrize(
    "reset",
    [
        lambda: f"{time.time() + 365 * 86400:.0f}",  # a year away, epoch seconds
        lambda: (datetime.now(timezone.utc) + timedelta(hours=5)).isoformat(),  # a zone slip
        lambda: (datetime.now(timezone.utc) + timedelta(hours=1)).strftime(
            "%a, %d %b %Y %H:%M:%S GMT"
        ),
    ],
    ids=["epoch-a-year-away", "iso-five-hours", "http-date-an-hour"],
)
def test_a_minute_reset_far_away_is_the_next_full_minute_not_a_stop(
    reset: Callable[[], str],
) -> None:
    """v3: a minute reset more than a minute away never makes a long pause or a stop,
    neither after a 429 (no Retry-After) nor after an answer that used up the minute."""
    limited = Reply(429, {"Errors": [{"Value": "Rate limit exceeded"}]}, {})
    limited.headers["x-rate-limit-reset-minute"] = reset()
    spent = Reply(
        200,
        {"id": FID, "geotabId": GID},
        {"x-rate-limit-remaining-minute": "0", "x-rate-limit-reset-minute": reset()},
    )
    fake = FakeFusebill().script("latch", FID, limited, spent)
    throttle = NoticingThrottle()
    attempts = AttemptLoop(throttle, RetryPolicy(cushion=0.0), Notices(Silent(io.StringIO())))
    sent = latch(attempts, fake)
    assert sent.verdict is not None and sent.verdict.kind is Meaning.SUCCESS
    assert throttle.stop_reason is None
    assert len(throttle.pauses) == 2
    assert all(0.0 < p <= 60.0 for p in throttle.pauses), throttle.pauses


def refused(fid: int) -> Reply:
    return Reply(
        None,
        error=ReplyError.CONNECTION,
        detail="connection refused",
        url=f"http://127.0.0.1:9/v1/Geotab/LatchCustomer/{fid}/{GID}",
    )


def test_an_outage_before_any_answer_names_the_host_and_port_it_could_not_reach() -> None:
    """The outage streak trips before any answer came: the stop names host:port (the URL,
    not the rows, is what is wrong); once any answer came, an outage names none."""
    policy = RetryPolicy(max_attempts=100, backoff_base=0.0001, backoff_cap=0.0001, outage_streak=3)
    attempts, throttle, _ = loop(policy)
    sent = latch(attempts, FakeFusebill().always("latch", refused))
    assert (sent.verdict, sent.attempts) == (None, 3)
    assert throttle.stop_reason is StopReason.API_DOWN
    assert attempts.stop.unreachable == "127.0.0.1:9"
    assert attempts.stop.detail == "last problem: connection failed: connection refused"

    answered, throttle, _ = loop(policy)
    fake = FakeFusebill().script("latch", FID, error(503, "busy"))
    fake.always("latch", refused)
    assert latch(answered, fake).verdict is None
    assert throttle.stop_reason is StopReason.API_DOWN
    assert answered.stop.unreachable == ""  # an answer came: the host was reached


def test_a_used_up_minute_window_says_why_everyone_pauses() -> None:
    err = io.StringIO()
    attempts = AttemptLoop(NoticingThrottle(), FAST, Notices(Silent(err)))
    fake = FakeFusebill().script("latch", FID, spent_minute(30))
    assert latch(attempts, fake).verdict is not None
    [line] = err.getvalue().splitlines()
    assert line.startswith("Pausing ")
    assert line.endswith(
        ": this minute's API limit is used up (X-Rate-Limit-Remaining-Minute: 0)."
    ), line
