"""Fusebill's rate-limit headers: what is left this minute and today, when each resets, and
``Retry-After``. A reset time may come as epoch seconds, ISO 8601 or an HTTP date."""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from batch_latch.fusebill.answers import Reply

_LONG_FRACTION = re.compile(r"([.,]\d{6})\d+")  # .NET writes 7 digits; 3.10 reads 6
_MINUTE = 60.0  # a minute window never resets further away than this
_SLACK = 1.0  # a reset this much over a minute ago is still "just passed" (clock rounding)


@dataclass(frozen=True)
class Limits:
    remaining_minute: int | None
    reset_minute: float | None  # seconds from now until the minute window frees
    remaining_day: int | None
    reset_day_at: datetime | None  # when the daily quota resets (UTC)
    limit_minute: int | None = None  # the account's limits, X-Rate-Limit-Limit-Minute / -Day
    limit_day: int | None = None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except (ValueError, OverflowError):
        return None


def parse_time(value: str | None) -> datetime | None:
    """A reset time as epoch seconds, ISO 8601 or an HTTP date; None when unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number != number or abs(number) > 1e11:  # NaN or absurd
            return None
        try:
            return datetime.fromtimestamp(number, tz=timezone.utc)
        except (ValueError, OverflowError, OSError):  # before year 1, or the platform's range
            return None
    try:
        iso_text = _LONG_FRACTION.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
        iso = datetime.fromisoformat(iso_text)
        return iso if iso.tzinfo else iso.replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def seconds_until(value: str | None, reply: Reply, now: datetime) -> float | None:
    """How long until ``value``; measured against the server's ``Date`` when clocks differ."""
    when = parse_time(value)
    if when is None:
        return None
    server_now = parse_time(reply.header("date"))
    base = now
    if server_now is not None and abs((server_now - now).total_seconds()) > 2:
        base = server_now
    return (when - base).total_seconds()


def retry_after(reply: Reply, now: datetime) -> float | None:
    value = reply.header("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN: unreadable
    wait = seconds_until(value, reply, now)
    return None if wait is None else max(0.0, wait)


def minute_reset(value: str | None, reply: Reply, now: datetime) -> float:
    """Seconds until the minute window frees (0 for a reset just passed). A reset that cannot
    be read, or that is more than a minute away (a minute window cannot reset later: such a
    time is a clock or time-zone slip), or long past, means the next full minute."""
    wait = seconds_until(value, reply, now)
    if wait is None or not -_MINUTE - _SLACK <= wait <= _MINUTE:
        return 60.0 - now.timestamp() % 60.0
    return max(0.0, wait)


def limits(reply: Reply, now: datetime) -> Limits:
    reset_minute = None
    remaining_minute = _int(reply.header("x-rate-limit-remaining-minute"))
    if reply.header("x-rate-limit-reset-minute") is not None or remaining_minute == 0:
        reset_minute = minute_reset(reply.header("x-rate-limit-reset-minute"), reply, now)
    return Limits(
        remaining_minute=remaining_minute,
        reset_minute=reset_minute,
        remaining_day=_int(reply.header("x-rate-limit-remaining-day")),
        reset_day_at=parse_time(reply.header("x-rate-limit-reset-day")),
        limit_minute=_int(reply.header("x-rate-limit-limit-minute")),
        limit_day=_int(reply.header("x-rate-limit-limit-day")),
    )
