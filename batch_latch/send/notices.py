"""What a live command tells the user on stderr while it works: estimates, pauses, one-time
warnings. Thread-safe: workers call it; each kind of line is said once or when it changes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from batch_latch.send.estimate import (
    Pace,
    daily_bound,
    duration,
    duration_for,
    duration_short,
    limits_text,
    seconds_for,
)
from batch_latch.send.progress import Progress
from batch_latch.vocab import plural

VISIBLE_PAUSE = 5.0  # seconds: a pause this long or longer gets a line of its own


def local_time(moment: datetime) -> str:
    """A moment as the user's wall clock shows it, with the zone's name."""
    local = moment.astimezone()
    return f"{local:%H:%M:%S} {local.tzname() or ''}".strip()


def both_times(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%d %H:%M} UTC ({moment.astimezone():%Y-%m-%d %H:%M} local)"


class Notices:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._said: set[str] = set()
        self._pause_end = 0.0  # monotonic end of the last pause told

    def say(self, text: str) -> None:
        self._progress.write(text)

    def once(self, key: str, text: str) -> bool:
        """Say ``text`` unless a line with this key was said already; True when said now."""
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
        self.say(text)
        return True

    def pause(self, seconds: float, cause: str) -> None:
        """A pause every worker keeps; told when it is long enough for a person to wonder."""
        end = time.monotonic() + seconds
        until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        if seconds >= 1:
            self._progress.paused(f"until {local_time(until)}: {cause}", seconds)
        else:
            self._progress.paused("")
        if seconds < VISIBLE_PAUSE:
            return
        with self._lock:
            if end <= self._pause_end + 1.0:  # the same pause, told already
                return
            self._pause_end = end
        self.say(f"Pausing {duration_short(seconds)} until {local_time(until)}: {cause}.")

    def estimate(self, requests: int, pace: Pace) -> None:
        """Once the account's limits are known: how long the rest takes at them (in days when
        the daily quota is the bound), or that --rate is the bound and the first estimate
        holds."""
        if not requests or not pace.knows_limits:
            return
        took = f"{duration_for(requests, pace)} at them"
        bound = daily_bound(requests, pace)
        if not bound and seconds_for(requests, pace) <= requests / pace.rate * 1.1:
            took = (
                f"{duration(requests / pace.rate)} at --rate {pace.rate:g}, which stays below them"
            )
        self.once(
            "limits",
            f"This account's limits are {limits_text(pace)}: the {plural(requests, 'request')} "
            f"left {'takes' if requests == 1 else 'take'} {took}.",
        )
