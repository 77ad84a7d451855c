"""Contract v3, "How responses are treated": a minute reset more than a minute away means
"the next full minute", as an unreadable one does. A minute window cannot reset later than
that; such a time is a clock or time-zone slip and never a reason for a long pause or a stop.
(The formats themselves are tests/fusebill/test_answers.py.)"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from batch_latch.fusebill.answers import Reply
from batch_latch.fusebill.ratelimits import limits, minute_reset, parse_time

NOW = datetime(2024, 3, 1, 12, 0, 45, 500000, tzinfo=timezone.utc)
NEXT_MINUTE = 14.5  # NOW to 12:01:00


def epoch(when: datetime) -> str:
    return f"{when.timestamp():.0f}"


def iso(when: datetime) -> str:
    return when.isoformat()


def http(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(timezone.utc), usegmt=True)


def exhausted(reset: str, **more: str) -> Reply:
    return Reply(
        200,
        None,
        {"x-rate-limit-remaining-minute": "0", "x-rate-limit-reset-minute": reset, **more},
    )


Format = Callable[[datetime], str]
FORMATS: list[Format] = [epoch, iso, http]
AWAY = {
    "61 s": timedelta(seconds=61),
    "90 s": timedelta(seconds=90),
    "an hour": timedelta(hours=1),
    "a day": timedelta(days=1),
    "a year": timedelta(days=365),
    "two hours back": timedelta(hours=-2),
}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("away", AWAY.values(), ids=list(AWAY))
def test_a_reset_more_than_a_minute_away_is_the_next_full_minute(
    fmt: Format, away: timedelta
) -> None:
    reset = fmt(NOW.replace(microsecond=0) + timedelta(seconds=15) + away)
    assert limits(exhausted(reset), NOW).reset_minute == pytest.approx(NEXT_MINUTE)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_a_reset_within_the_minute_is_kept(fmt: Format) -> None:
    for seconds in (1, 30, 59):
        reset = fmt(NOW.replace(microsecond=0) + timedelta(seconds=seconds))
        assert limits(exhausted(reset), NOW).reset_minute == pytest.approx(seconds - 0.5)


@pytest.mark.parametrize(
    "reset",
    [
        "2024-03-01T13:01:00",  # the server's local time (UTC+1) without an offset
        "2024-03-01T07:01:00",  # UTC-5, the same
        "2024-03-01T13:01:00+00:00",  # local time labelled UTC
        "2024-03-01T12:01:00+05:30",  # the wrong offset
        "Fri, 01 Mar 2024 13:01:00 GMT",
        "Fri, 01 Mar 2024 12:01:00 -0900",
        "1709298060",  # 12:01:00 plus an hour, in epoch seconds
        "1709294460000",  # epoch milliseconds
        "9999-12-31T23:59:59Z",
        "99999999999",
        "-99999999999",  # before year 1: unreadable, never an error
        "-1",
    ],
)
def test_time_zone_slips_and_far_futures_wait_for_the_next_full_minute(reset: str) -> None:
    assert limits(exhausted(reset), NOW).reset_minute == pytest.approx(NEXT_MINUTE)


def test_a_slip_is_judged_against_the_servers_clock_when_it_sends_one() -> None:
    server_now = NOW.replace(microsecond=0) + timedelta(hours=3)  # a server three hours ahead
    kept = exhausted(iso(server_now + timedelta(seconds=20)), date=http(server_now))
    assert limits(kept, NOW).reset_minute == pytest.approx(20.0)
    slipped = exhausted(iso(server_now + timedelta(hours=1)), date=http(server_now))
    assert limits(slipped, NOW).reset_minute == pytest.approx(NEXT_MINUTE)


def test_just_over_a_minute_is_over_a_minute() -> None:
    reset = epoch(NOW.replace(microsecond=0) + timedelta(seconds=61))  # 60.5 s away
    assert limits(exhausted(reset), NOW).reset_minute == pytest.approx(NEXT_MINUTE)


def test_the_rule_is_one_function() -> None:
    reply = exhausted("soon")
    assert minute_reset("soon", reply, NOW) == pytest.approx(NEXT_MINUTE)
    assert minute_reset(None, reply, NOW) == pytest.approx(NEXT_MINUTE)
    assert minute_reset(epoch(NOW - timedelta(seconds=30)), reply, NOW) == 0.0  # just passed
    assert minute_reset(epoch(NOW - timedelta(minutes=5)), reply, NOW) == pytest.approx(14.5)


def test_negative_and_tiny_epochs_are_unreadable_not_errors() -> None:
    assert parse_time("-99999999999") is None
    assert parse_time("-62135596801") is None
