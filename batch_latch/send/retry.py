"""How long to wait before trying again: a small immutable value, as urllib3's ``Retry`` is.

The runner asks it; nothing here sleeps or keeps state, so tests give a policy with tiny
delays instead of patching module globals.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # attempts per row for retryable answers (429s do not count)
    backoff_base: float = 0.5  # seconds before the 2nd attempt; doubles each time
    backoff_cap: float = 30.0
    pause_floor: float = 1.0  # no 429 pause is shorter: a reset in the past never makes a storm
    rate_limit_cap: float = 60.0  # most a 429 pause grows to when the server names no time
    storm_limit: float = 600.0  # ten minutes of 429s with nothing getting through: stop
    long_pause: float = 900.0  # a server-asked pause over 15 minutes stops the run
    outage_streak: int = 20  # retryable failures in a row across the run: the API is down
    cushion: float = 0.05  # start a little after a reset, not on its edge

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with jitter before attempt ``failures + 1``."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1))
        return float(delay * rng.uniform(0.5, 1.0))

    def rate_limit_pause(self, streak: int, asked: float | None, rng: random.Random) -> float:
        """The pause after the ``streak``-th 429 in a row.

        ``asked`` is what the server said (Retry-After or the minute reset), else None. The
        pause never falls under a floor that doubles while 429s continue, so a server that
        says "0" or names a reset already past is still not hammered.
        """
        floor = min(self.rate_limit_cap, self.pause_floor * 2 ** (max(1, streak) - 1))
        if asked is None:
            return float(floor * rng.uniform(1.0, 1.25))
        return float(max(asked + self.cushion, floor))
