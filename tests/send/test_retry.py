"""RetryPolicy: backoff with jitter and the 429 pause floor, as pure arithmetic."""

from __future__ import annotations

import dataclasses
import random

import pytest

from batch_latch.send.retry import RetryPolicy


def test_defaults_match_the_contract() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 5
    assert policy.pause_floor == 1.0  # every 429 pause lasts at least 1 s
    assert policy.storm_limit == 600.0  # ten minutes of 429s
    assert policy.long_pause == 900.0  # over 15 minutes: stop
    assert policy.outage_streak == 20


def test_it_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_attempts = 3  # type: ignore[misc]


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 10, 30])
def test_backoff_doubles_with_jitter_and_is_capped(failures: int) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=30.0)
    rng = random.Random(failures)
    full = min(30.0, 0.5 * 2 ** (failures - 1))
    for _ in range(50):
        delay = policy.backoff(failures, rng)
        assert full * 0.5 <= delay <= full


def test_backoff_jitter_spreads_the_workers() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    delays = {round(policy.backoff(3, rng), 6) for _ in range(20)}
    assert len(delays) > 10


def test_a_429_with_no_asked_time_waits_at_least_the_growing_floor() -> None:
    policy = RetryPolicy(pause_floor=1.0, rate_limit_cap=60.0)
    rng = random.Random(1)
    for streak, floor in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (20, 60.0)]:
        pause = policy.rate_limit_pause(streak, None, rng)
        assert floor <= pause <= floor * 1.25


@pytest.mark.parametrize("asked", [0.0, 0.2, 0.9])
def test_an_asked_time_under_the_floor_is_raised_to_it(asked: float) -> None:
    policy = RetryPolicy(pause_floor=1.0, cushion=0.05)
    rng = random.Random(0)
    assert policy.rate_limit_pause(1, asked, rng) == 1.0
    assert policy.rate_limit_pause(3, asked, rng) == 4.0


def test_an_asked_time_over_the_floor_is_kept_with_a_cushion() -> None:
    policy = RetryPolicy(pause_floor=1.0, cushion=0.05)
    assert policy.rate_limit_pause(1, 12.0, random.Random(0)) == pytest.approx(12.05)


def test_a_streak_of_zero_counts_as_the_first() -> None:
    policy = RetryPolicy(pause_floor=1.0, cushion=0.0)
    assert policy.rate_limit_pause(0, 0.0, random.Random(0)) == 1.0
