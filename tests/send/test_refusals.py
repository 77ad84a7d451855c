"""The stop on systematic refusals (25 rows in a row refused by Fusebill) and the daily
quota's reserve for other integrations."""

from __future__ import annotations

import io
from pathlib import Path

from batch_latch.fusebill.answers import Reply, classify_read
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.settings import QuotaReserve
from batch_latch.vocab import StopReason
from tests.doubles import FakeFusebill, customer_object, error
from tests.send.test_runner import latch

FIRST = 1_000_001


def rows(n: int) -> list[tuple[str, str]]:
    return [(str(FIRST + i), f"GT{i}") for i in range(n)]


def refusing(n: int) -> FakeFusebill:
    fake = FakeFusebill({FIRST + i: None for i in range(n)})
    return fake.always("latch", lambda fid: error(400, f"Customer {fid} is not a Geotab customer"))


def test_25_refusals_in_a_row_stop_the_run(tmp_path: Path) -> None:
    outcome, got, err = latch(tmp_path, rows(40), refusing(40), workers=1)
    statuses = [r["status"] for r in got]
    assert statuses.count("failed") == 25 and statuses.count("pending") == 15
    assert outcome.stop_reason is StopReason.SYSTEMATIC_REFUSAL
    assert "25 rows in a row were refused" in err and "--keep-going" in err
    assert "is not a Geotab customer" in err  # the last refusal is quoted
    assert "FUSEBILL_API_KEY" in err


def test_keep_going_sends_every_row(tmp_path: Path) -> None:
    outcome, got, _ = latch(tmp_path, rows(30), refusing(30), workers=1, keep_going=True)
    assert {r["status"] for r in got} == {"failed"}
    assert outcome.stop_reason is None


def test_customers_not_found_in_a_row_stop_the_run_too(tmp_path: Path) -> None:
    """The signature of a key for another account: none of the customers exist."""
    outcome, got, _ = latch(tmp_path, rows(30), FakeFusebill({}), workers=1)
    assert [r["status"] for r in got].count("not_found") == 25
    assert outcome.stop_reason is StopReason.SYSTEMATIC_REFUSAL


def test_any_other_ending_ends_the_streak(tmp_path: Path) -> None:
    fake = refusing(40)
    for i in range(0, 40, 20):  # every 20th row's customer already holds its geotabId
        fake.known[FIRST + i] = f"GT{i}"
    outcome, got, _ = latch(tmp_path, rows(40), fake, workers=1)
    assert outcome.stop_reason is None
    assert [r["status"] for r in got].count("failed") == 38


def test_a_refusal_of_the_tools_own_ends_the_streak(tmp_path: Path) -> None:
    fake = refusing(30)
    fake.known[FIRST + 12] = "OLD"  # relatch_refused: not Fusebill's refusal
    outcome, _, _ = latch(tmp_path, rows(30), fake, workers=1)
    assert outcome.stop_reason is None


# --- the reserve ---------------------------------------------------------------------------


def answer(remaining: int, limit: int = 1000) -> Reply:
    reply = customer_object(FIRST, None)
    headers = {"x-rate-limit-limit-day": str(limit), "x-rate-limit-remaining-day": str(remaining)}
    return Reply(reply.status, reply.body, {**reply.headers, **headers})


def attempt(remaining: int, reserve: QuotaReserve) -> tuple[Throttle, str]:
    throttle = Throttle(10_000.0)
    err = io.StringIO()
    loop = AttemptLoop(throttle, RetryPolicy(), Notices(Silent(err)), reserve=reserve)
    loop.call(lambda: answer(remaining), lambda r: classify_read(r, FIRST)[0], 0)
    return throttle, err.getvalue()


def test_the_reserve_counts_as_the_end_of_the_day() -> None:
    ten = QuotaReserve("10%", percent=10.0)
    assert attempt(101, ten)[0].stop_reason is None
    throttle, _ = attempt(100, ten)
    assert throttle.stop_reason is StopReason.DAILY_QUOTA
    assert attempt(1, QuotaReserve("0", count=0))[0].stop_reason is None
    assert attempt(0, QuotaReserve("0", count=0))[0].stop_reason is StopReason.DAILY_QUOTA
    assert attempt(499, QuotaReserve("500", count=500))[0].stop_reason is StopReason.DAILY_QUOTA


def test_the_reserve_is_named_as_a_count(tmp_path: Path) -> None:
    throttle = Throttle(10_000.0)
    loop = AttemptLoop(
        throttle,
        RetryPolicy(),
        Notices(Silent(io.StringIO())),
        reserve=QuotaReserve("10%", percent=10.0),
    )
    loop.call(lambda: answer(50), lambda r: classify_read(r, FIRST)[0], 0)
    assert "100 requests (10%) left for other integrations" in loop.stop.detail
