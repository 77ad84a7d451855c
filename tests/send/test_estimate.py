"""The one estimator: requests as they will be sent, and days as the quota refills."""

from __future__ import annotations

from batch_latch.send.estimate import Pace, how_long, requests_needed, seconds_for

LIVE = Pace(10.0, 1000, 180_000)


def test_requests_count_a_batch_read_then_the_writes() -> None:
    assert requests_needed(10_000, reads=True, writes=True, read_batch=100) == 10_100
    assert requests_needed(10_000, reads=True, writes=False, read_batch=100) == 100
    assert requests_needed(10_001, reads=True, writes=False, read_batch=100) == 101
    assert requests_needed(300, reads=True, writes=True, read_batch=1) == 600  # v2
    assert requests_needed(300, reads=False, writes=True, read_batch=100) == 300  # --no-read


def test_days_are_counted_as_the_quota_refills() -> None:
    """The issue's case: 360,002 requests at 1,000/min and 180,000/day: two full days, then
    two requests: about 2.0 days (v2's run said 3.0 and its status 2.0)."""
    seconds = seconds_for(360_002, Pace(1000.0, 1000, 180_000))
    assert 2 * 86400 <= seconds < 2 * 86400 + 60
    assert how_long(360_002, Pace(1000.0, 1000, 180_000)).startswith("about 2.0 days")


def test_a_million_new_rows_at_live_limits_with_the_default_reserve() -> None:
    requests = requests_needed(1_000_000, reads=True, writes=True, read_batch=100)
    pace = Pace(1000.0, 1000, 180_000, reserve=18_000)
    days = seconds_for(requests, pace) / 86400
    assert days <= 6.3, days
    assert "less 18,000 left to other integrations" in how_long(requests, pace)


def test_the_rate_is_the_bound_when_it_is_below_the_limits() -> None:
    assert how_long(600, LIVE) == "about 1 min at --rate 10"
    assert how_long(600, Pace(10.0)) == "about 1 min at --rate 10"
