"""Fusebill's minute and day limits, and the ``X-Rate-Limit-*`` headers that report them."""

from __future__ import annotations

import email.utils
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .config import ResetFormat, SandboxConfig

RATE_HEADERS = (
    "X-Rate-Limit-Limit-Minute",
    "X-Rate-Limit-Remaining-Minute",
    "X-Rate-Limit-Reset-Minute",
    "X-Rate-Limit-Limit-Day",
    "X-Rate-Limit-Remaining-Day",
    "X-Rate-Limit-Reset-Day",
)


def _ceil_ms(t: float) -> int:
    # Rounded up, so a client waiting until the stated time never starts too early; the small
    # tolerance keeps float noise (x.0000000001) from adding a millisecond.
    return math.ceil(t * 1000 - 1e-3)


def format_reset(t: float, fmt: ResetFormat) -> str:
    """Render a reset time the way ``reset_format`` asks."""
    if fmt == "http":
        return email.utils.formatdate(math.ceil(t - 1e-6), usegmt=True)
    ms = _ceil_ms(t)
    if fmt == "epoch":
        if ms % 1000 == 0:
            return str(ms // 1000)
        return f"{ms // 1000}.{ms % 1000:03d}".rstrip("0")
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@dataclass(frozen=True)
class RateState:
    """The limits as one answer reports them; ``exceeded`` names the limit a 429 hit."""

    limit_minute: int
    remaining_minute: int
    reset_minute: float
    limit_day: int
    remaining_day: int
    reset_day: float
    exceeded: str | None = None  # None, "minute" or "day"
    retry_after: int | None = None  # seconds until the exceeded limit frees

    def headers(self, fmt: ResetFormat) -> list[tuple[str, str]]:
        values = (
            str(self.limit_minute),
            str(self.remaining_minute),
            format_reset(self.reset_minute, fmt),
            str(self.limit_day),
            str(self.remaining_day),
            format_reset(self.reset_day, fmt),
        )
        return list(zip(RATE_HEADERS, values))


class Limiter:
    """Fusebill's minute and day limits; a token bucket replaces the minute window on request.

    Minute windows are aligned to the wall clock and the day is the UTC day, as Fusebill's
    reset headers suggest; a refused request counts against nothing.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self._lock = threading.Lock()
        self._per_minute = config.limits.per_minute
        self._per_day = config.day_limit or config.limits.per_day
        self._minute_s = config.minute_seconds
        self._rate = config.rate_limit
        self._capacity = max(1.0, config.rate_limit or 0.0)
        self._tokens = self._capacity
        self._stamp = time.time()
        self._window = -1
        self._window_count = 0
        self._day = -1
        self._day_count = 0

    @property
    def minute_limit_text(self) -> str:
        if self._rate is not None:
            return f"{self._rate:g} requests per second"
        text = f"{self._per_minute} requests per minute"
        if self._minute_s != 60:
            text += f" (sandbox minute = {self._minute_s:g} s)"
        return text

    @property
    def day_limit_text(self) -> str:
        return f"{self._per_day} requests per day"

    def check(self, consume: bool) -> RateState:
        """Count one request if it fits (``consume``), and report the state either way."""
        with self._lock:
            now = time.time()
            self._advance(now)
            exceeded: str | None = None
            retry_after: float | None = None
            if consume:
                if self._day_count >= self._per_day:
                    exceeded, retry_after = "day", self._day_reset() - now
                elif not self._minute_has_room():
                    exceeded, retry_after = "minute", self._minute_free_at(now) - now
                else:
                    self._count_one()
            return self._state(now, exceeded, retry_after)

    def _count_one(self) -> None:
        self._day_count += 1
        if self._rate is not None:
            self._tokens -= 1.0
        else:
            self._window_count += 1

    def _state(self, now: float, exceeded: str | None, retry_after: float | None) -> RateState:
        if self._rate is not None:
            limit_minute = round(self._rate * 60)
            remaining_minute = max(0, math.floor(self._tokens + 1e-9))
            reset_minute = self._next_token_at(now)
        else:
            limit_minute = self._per_minute
            remaining_minute = max(0, self._per_minute - self._window_count)
            reset_minute = (self._window + 1) * self._minute_s
        return RateState(
            limit_minute=limit_minute,
            remaining_minute=remaining_minute,
            reset_minute=reset_minute,
            limit_day=self._per_day,
            remaining_day=max(0, self._per_day - self._day_count),
            reset_day=self._day_reset(),
            exceeded=exceeded,
            retry_after=None if retry_after is None else max(1, math.ceil(retry_after - 1e-6)),
        )

    def _advance(self, now: float) -> None:
        window = math.floor(now / self._minute_s)
        if window != self._window:
            self._window, self._window_count = window, 0
        day = math.floor(now / 86_400)
        if day != self._day:
            self._day, self._day_count = day, 0
        if self._rate is not None:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._stamp = now

    def _minute_has_room(self) -> bool:
        if self._rate is not None:
            return self._tokens >= 1.0 - 1e-9
        return self._window_count < self._per_minute

    def _minute_free_at(self, now: float) -> float:
        if self._rate is not None:
            return now + max(0.0, 1.0 - self._tokens) / self._rate
        return (self._window + 1) * self._minute_s

    def _next_token_at(self, now: float) -> float:
        assert self._rate is not None
        if self._tokens >= self._capacity:
            return now
        target = min(math.floor(self._tokens + 1e-9) + 1.0, self._capacity)
        return now + max(0.0, target - self._tokens) / self._rate

    def _day_reset(self) -> float:
        return float((self._day + 1) * 86_400)
