"""One gate that every request of a run passes: pace, shared pauses, request budget and stop.

Hand-written because no library does it: urllib3's ``Retry``, tenacity and pyrate-limiter
all sleep in the thread that got the 429, while the other workers keep sending into the
limit. Here one 429 (or ``X-Rate-Limit-Remaining-Minute: 0``) pauses every worker.

Pace is a token bucket: ``rate`` tokens a second, at most ``burst`` (2) saved up, so over
any span ``t`` no more than ``rate * t + 2`` requests start (the contract's "bursts of at
most 2 requests above it").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from batch_latch.vocab import StopReason

BURST = 2.0
# Float rounding can leave 0.9999999999995 tokens and a wait too short to move the clock:
# a caller that waits exactly as told would be told to wait again, for ever.
_EPSILON = 1e-6


class Throttle:
    def __init__(
        self,
        rate: float,
        *,
        burst: float = BURST,
        max_requests: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._burst = max(1.0, burst)
        self._clock = clock
        self._cond = threading.Condition()
        self._tokens = 1.0
        self._last = clock()
        self._paused_until = 0.0
        self._budget = max_requests
        self._granted = 0
        self._by_day: dict[str, int] = {}  # requests started per UTC day (for status)
        self._stop_reason: StopReason | None = None

    # --- decisions (pure, under the lock; unit-tested with a fake clock) -------------------

    def _decide(self, now: float) -> float | None:
        """0.0: start now (a token is taken); > 0: wait that long; None: no more requests."""
        if self._stop_reason is not None:
            return None
        if self._budget is not None and self._granted >= self._budget:
            self._stop_reason = self._stop_reason or StopReason.MAX_REQUESTS
            return None
        if now < self._paused_until:
            return self._paused_until - now
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            self._granted += 1
            day = datetime.now(timezone.utc).date().isoformat()
            self._by_day[day] = self._by_day.get(day, 0) + 1
            return 0.0
        return (1.0 - self._tokens) / self._rate

    # --- what workers call -----------------------------------------------------------------

    def acquire(self) -> bool:
        """Block until this request may start; False when the run is stopping."""
        with self._cond:
            while True:
                wait = self._decide(self._clock())
                if wait is None:
                    self._cond.notify_all()
                    return False
                if wait == 0.0:
                    return True
                self._cond.wait(timeout=wait)

    def pause_until(self, deadline: float) -> bool:
        """No request starts before ``deadline`` (same clock); a later pause wins.

        True when this call made the pause longer (so its cause is worth telling)."""
        with self._cond:
            if deadline <= self._paused_until:
                return False
            self._paused_until = deadline
            # Tokens saved up before the pause are capped; the bucket still fills while paused,
            # so up to ``burst`` requests may start at the deadline (a fresh window), then the
            # steady pace. The bound "rate * t + burst" holds across the pause.
            self._tokens = min(self._tokens, 1.0)
            return True

    def pause_for(self, seconds: float) -> bool:
        return self.pause_until(self._clock() + max(0.0, seconds))

    def stop(self, reason: StopReason) -> None:
        """Stop everything: waiting workers wake up and send nothing more. First reason wins."""
        with self._cond:
            if self._stop_reason is None:
                self._stop_reason = reason
            self._cond.notify_all()

    def sleep(self, seconds: float) -> bool:
        """Back off for ``seconds`` unless the run stops first; False if it stopped."""
        deadline = self._clock() + seconds
        with self._cond:
            while self._stop_reason is None:
                left = deadline - self._clock()
                if left <= 0:
                    return True
                self._cond.wait(timeout=left)
            return False

    @property
    def stop_reason(self) -> StopReason | None:
        with self._cond:
            return self._stop_reason

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def granted(self) -> int:
        """Requests started so far (what ``--max-requests`` counts)."""
        with self._cond:
            return self._granted

    @property
    def by_day(self) -> dict[str, int]:
        """Requests started per UTC day, for the job's history."""
        with self._cond:
            return dict(self._by_day)

    @property
    def paused_until(self) -> float:
        with self._cond:
            return self._paused_until
