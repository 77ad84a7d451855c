"""The one estimator: how many requests a command sends and how long they take, at
``--rate`` or at the account's limits (in days when the daily quota binds). Run, plan, undo
and ``status`` all say their figures through here, so they cannot disagree.

Days are counted as the quota refills: for 360,002 requests at 180,000 a day the last two
go out on the third day's first minute, about 2.0 days after a start at the reset (v2 said
3.0 in a run and 2.0 in ``status``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """What bounds the sending: ``--rate``, and the account's limits once an answer showed
    them; ``reserve`` is the part of the day left to other integrations."""

    rate: float
    limit_minute: int | None = None
    limit_day: int | None = None
    reserve: int = 0
    #: ``X-Rate-Limit-Remaining-Day`` as last sent, and seconds until the day resets: with
    #: both known, the first day of an estimate is what is left of today, not a whole one.
    left_today: int | None = None
    day_resets_in: float | None = None

    @property
    def per_second(self) -> float:
        if self.limit_minute:
            return min(self.rate, self.limit_minute / 60.0)
        return self.rate

    @property
    def usable_day(self) -> int | None:
        if not self.limit_day:
            return None
        return max(1, self.limit_day - self.reserve)

    @property
    def usable_today(self) -> int | None:
        """What this tool may still send before the day resets (the reserve kept back)."""
        if self.left_today is None or self.day_resets_in is None:
            return None
        return max(0, self.left_today - self.reserve)

    @property
    def knows_limits(self) -> bool:
        return self.limit_minute is not None or self.limit_day is not None


def requests_needed(rows: int, *, reads: bool, writes: bool, read_batch: int) -> int:
    """Requests for ``rows`` customers: the reads as they are sent (a request per batch of
    ``read_batch``), then a write each where the command writes."""
    read_requests = math.ceil(rows / max(1, read_batch)) if reads else 0
    return read_requests + (rows if writes else 0)


def daily_bound(requests: int, pace: Pace) -> bool:
    """Whether the daily quota, not the pace, bounds sending ``requests``: they do not fit
    in what is left of today (or, when that is unknown, in one day's quota)."""
    day = pace.usable_day
    if day is None:
        return False
    today = pace.usable_today
    return requests > (day if today is None else today)


def seconds_for(requests: int, pace: Pace) -> float:
    """How long ``requests`` take: at the pace while the quota lasts, then a wait for each
    reset. What is left of today counts first when it is known."""
    per_second = pace.per_second
    day = pace.usable_day
    if day is None or not daily_bound(requests, pace):
        return requests / per_second
    today = pace.usable_today
    if today is None or pace.day_resets_in is None:
        full_days = math.ceil(requests / day) - 1
        return full_days * 86400.0 + (requests - full_days * day) / per_second
    rest = requests - today
    full_days = math.ceil(rest / day) - 1
    start = max(pace.day_resets_in, today / per_second)
    return start + full_days * 86400.0 + (rest - full_days * day) / per_second


def days(seconds: float) -> str:
    """``about 1.2 days``: how a daily-bound estimate is said."""
    return f"about {seconds / 86400:.1f} days"


def duration_for(requests: int, pace: Pace) -> str:
    """How long ``requests`` take at ``pace``, in days when the daily quota is the bound."""
    seconds = seconds_for(requests, pace)
    return days(seconds) if daily_bound(requests, pace) else duration(seconds)


def duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"about {int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"about {seconds / 86400:.1f} days"


def duration_short(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def limits_text(pace: Pace) -> str:
    """``1,000 a minute, 180,000 a day`` (with the reserve, when there is one)."""
    parts = [
        f"{pace.limit_minute:,} a minute" if pace.limit_minute else "",
        f"{pace.limit_day:,} a day" if pace.limit_day else "",
    ]
    text = ", ".join(p for p in parts if p)
    if pace.reserve and pace.limit_day:
        text += f" less {pace.reserve:,} left to other integrations"
    return text


def how_long(requests: int, pace: Pace) -> str:
    """``about 6.0 days at this account's limits (…)`` or ``about 9 min at --rate 10``."""
    at_rate = requests / pace.rate
    seconds = seconds_for(requests, pace)
    if not pace.knows_limits or (seconds <= at_rate * 1.1 and not daily_bound(requests, pace)):
        return f"{duration(at_rate)} at --rate {pace.rate:g}"
    return f"{duration_for(requests, pace)} at this account's limits ({limits_text(pace)})"


@dataclass(frozen=True)
class Estimate:
    requests: int
    text: str  # how long, in words ("nothing left to send" when no request is needed)


def estimate(rows: int, pace: Pace, *, reads: bool, writes: bool, read_batch: int) -> Estimate:
    """The requests ``rows`` customers need (read ``read_batch`` a request, then a write
    each where the command writes) and how long they take at ``pace``: what a command
    announces and what ``status`` says is left."""
    requests = requests_needed(rows, reads=reads, writes=writes, read_batch=read_batch)
    return Estimate(requests, how_long(requests, pace) if requests else "nothing left to send")
