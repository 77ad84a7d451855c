"""The daily quota spent: how long ``--wait-for-quota`` waits and what it says, and how a
stop at the reserve is told. The waits are recorded, never waited out (hours here).

- a reset Fusebill names: wait until then, plus the policy's cushion;
- no reset, or one already past: wait until the next UTC midnight (plus the cushion);
- the line on stderr says why, until when, that Ctrl-C stops and a re-run goes on;
- the reserve: the quota counts as spent "for this tool", and the stop says so.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from batch_latch.fusebill.answers import Reply, classify_latch, classify_read
from batch_latch.optiontypes import QuotaReserve
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.notices import Notices, both_times
from batch_latch.send.progress import Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import StopReason
from tests.doubles import FakeFusebill, customer_object

FID = 1_000_001
GID = "0909909"
CUSHION = 30.0
POLICY = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.005, cushion=CUSHION)
SPENT = {"Errors": [{"Value": "Daily rate limit exceeded: 5000 requests per day"}]}


class Recording(Throttle):
    """A throttle that records the pauses asked of it and keeps none of them."""

    def __init__(self) -> None:
        super().__init__(10_000.0)
        self.pauses: list[float] = []

    def pause_for(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return True


def _spent(reset: datetime | None) -> Reply:
    headers = {} if reset is None else {"x-rate-limit-reset-day": f"{reset.timestamp():.3f}"}
    return Reply(429, SPENT, headers)


def _latch_after(first: Reply) -> tuple[Recording, str, datetime]:
    """A latch answered ``first``, then 200, under --wait-for-quota: the throttle, stderr,
    and when the wait began."""
    fake = FakeFusebill().script("latch", FID, first, customer_object(FID, GID))
    throttle, err = Recording(), io.StringIO()
    loop = AttemptLoop(throttle, POLICY, Notices(Silent(err)), wait_for_quota=True)
    began = datetime.now(timezone.utc)
    sent = loop.call(lambda: fake.latch(FID, GID), lambda r: classify_latch(r, GID), 0)
    assert sent.attempts == 2 and throttle.stop_reason is None
    return throttle, err.getvalue(), began


def _next_utc_midnight(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)


def test_a_spent_quota_waits_until_the_reset_fusebill_names_plus_the_cushion() -> None:
    reset = datetime.now(timezone.utc) + timedelta(hours=2)
    throttle, err, began = _latch_after(_spent(reset))
    assert throttle.pauses == [pytest.approx((reset - began).total_seconds() + CUSHION, abs=2)]
    told = (
        f"The daily API quota is spent; waiting until it resets at {both_times(reset)} "
        "(--wait-for-quota). Ctrl-C stops the run; running the same command later goes on "
        "where it stopped."
    )
    assert told in err
    assert "Pausing 2.0 h until " in err and ": the daily API quota is spent.\n" in err


@pytest.mark.parametrize("reset", [None, "past"])
def test_a_spent_quota_without_a_reset_ahead_waits_until_the_next_utc_midnight(
    reset: str | None,
) -> None:
    now = datetime.now(timezone.utc)
    given = None if reset is None else now - timedelta(hours=1)
    throttle, err, began = _latch_after(_spent(given))
    midnight = _next_utc_midnight(began)
    assert throttle.pauses == [pytest.approx((midnight - began).total_seconds() + CUSHION, abs=2)]
    assert f"waiting until it resets at {both_times(midnight)} " in err


TEN_PERCENT = QuotaReserve("10%", percent=10.0)


def _at_reserve(
    wait: bool, reserve: QuotaReserve = TEN_PERCENT
) -> tuple[AttemptLoop, Recording, str]:
    """A read whose answer leaves 100 of the day's 1,000 requests: the 10% reserve."""
    reply = customer_object(FID, None)
    limits = {"x-rate-limit-limit-day": "1000", "x-rate-limit-remaining-day": "100"}
    answer = Reply(reply.status, reply.body, {**reply.headers, **limits})
    throttle, err = Recording(), io.StringIO()
    loop = AttemptLoop(
        throttle,
        POLICY,
        Notices(Silent(err)),
        wait_for_quota=wait,
        reserve=reserve,
    )
    loop.call(lambda: answer, lambda r: classify_read(r, FID)[0], 0)
    return loop, throttle, err.getvalue()


RESERVE = "reserve: 100 requests (10%) left for other integrations"


def test_a_stop_at_the_reserve_is_a_daily_quota_stop_for_this_tool() -> None:
    loop, throttle, _ = _at_reserve(wait=False)
    assert throttle.stop_reason is StopReason.DAILY_QUOTA
    assert loop.stop.at_reserve is True
    assert loop.stop.detail == RESERVE


def test_a_reserve_given_as_a_count_is_named_without_a_percent() -> None:
    loop, _, _ = _at_reserve(wait=False, reserve=QuotaReserve("100", count=100))
    assert loop.stop.detail == "reserve: 100 requests left for other integrations"


def test_a_wait_at_the_reserve_says_the_quota_is_spent_for_this_tool() -> None:
    _, throttle, err = _at_reserve(wait=True)
    assert throttle.stop_reason is None and len(throttle.pauses) == 1
    assert f"The daily API quota is spent for this tool ({RESERVE}); waiting until " in err


def test_a_spent_quota_without_a_reserve_is_not_said_to_be_this_tools() -> None:
    fake = FakeFusebill().script("latch", FID, _spent(None))
    throttle = Recording()
    loop = AttemptLoop(throttle, POLICY, Notices(Silent(io.StringIO())))
    loop.call(lambda: fake.latch(FID, GID), lambda r: classify_latch(r, GID), 0)
    assert throttle.stop_reason is StopReason.DAILY_QUOTA
    assert loop.stop.at_reserve is False
    assert loop.stop.detail == "daily quota"
