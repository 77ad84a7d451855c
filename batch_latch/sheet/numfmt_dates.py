"""Excel date and time serials as ISO 8601 text, showing only the parts a format names.

Dates are shown as ISO 8601 whatever the workbook's locale (reports read the same
everywhere), but a format's choice of parts is kept: ``yyyy-mm-dd`` on 45000.5 is
``2023-03-15`` (the format hides the time), ``mm:ss.0`` on 0.0001 is ``00:08.6`` (minutes
of the hour, seconds and tenths), ``[h]:mm:ss`` counts all the hours. Which ``m`` is a
minute follows Microsoft's "Number format codes" page: ``m`` right after ``h``/``hh`` or
right before ``ss`` is minutes, otherwise a month.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass

from batch_latch.sheet import numfmt_parts

_HIDDEN = re.compile(r'"[^"]*"|\\.|_.|\*.|\[(?![hms]+\])[^\]]*\]', re.IGNORECASE)
_RUN = re.compile(r"\[(h+|m+|s+)\]|([ymdhs])\2*|(\.0+)|(am/pm|a/p)", re.IGNORECASE)


@dataclass(frozen=True)
class Parts:
    """What a date/time format shows."""

    date: bool  # a year, month or day
    time: bool  # hours, minutes or seconds
    hours: bool
    minutes: bool
    seconds: bool
    decimals: int  # digits of a second after ``ss.``
    elapsed: str  # "h", "m" or "s" for [h], [mm], [ss]; "" for the time of day


@functools.lru_cache(maxsize=1024)
def parts(code: str) -> Parts:
    """The parts the first section of a date/time format names (cached: a column's cells
    share a handful of formats)."""
    bare = _HIDDEN.sub("", numfmt_parts.split(code)[0])
    runs: list[str] = []
    decimals, elapsed = 0, ""
    for match in _RUN.finditer(bare):
        if match.group(1):
            unit = match.group(1)[0].lower()
            elapsed = elapsed or unit
            runs.append(unit.upper())  # elapsed: [mm] is minutes wherever it stands
        elif match.group(2):
            runs.append(match.group(2).lower())
        elif match.group(3) and runs and runs[-1] in "sS":
            decimals = len(match.group(3)) - 1
    date = hours = seconds = minutes = False
    for i, run in enumerate(runs):
        if run == "m":
            before = runs[i - 1] if i else ""
            after = runs[i + 1] if i + 1 < len(runs) else ""
            minute = before in ("h", "H") or after in ("s", "S")
            minutes = minutes or minute
            date = date or not minute
        elif run in "yd":
            date = True
        hours = hours or run in "hH"
        minutes = minutes or run == "M"
        seconds = seconds or run in "sS"
    time = hours or minutes or seconds
    return Parts(date, time, hours, minutes, seconds, min(decimals, 3), elapsed)


def serial_to_iso(serial: float, date1904: bool, code: str) -> str | None:
    """The serial as the parts of ``code`` show it; None when the date is past the end of
    the calendar."""
    shown = parts(code)
    scale = 10**shown.decimals
    if shown.time and not shown.date:
        if shown.elapsed:
            return ("-" if serial < 0 else "") + _clock(round(abs(serial) * 86400 * scale), shown)
        return _clock(round((serial - serial // 1) * 86400 * scale) % (86400 * scale), shown)
    days = int(serial // 1)
    ticks = round((serial - days) * 86400 * scale)
    if ticks >= 86400 * scale:
        days, ticks = days + 1, 0
    day = _day(days, date1904)
    if day is None or not shown.time:
        return day
    return f"{day} {_clock(ticks, shown)}"


def _day(days: int, date1904: bool) -> str | None:
    if date1904:
        base = _dt.date(1904, 1, 1)
    else:
        # Excel counts a 29 February 1900 that never was (Lotus 1-2-3 compatibility):
        # serial 60 is that day, and serials from 61 on are one day ahead of the calendar.
        if days == 60:
            return "1900-02-29"
        base = _dt.date(1899, 12, 31) if days < 60 else _dt.date(1899, 12, 30)
    try:
        return (base + _dt.timedelta(days=days)).isoformat()
    except OverflowError:
        return None


def _clock(ticks: int, shown: Parts) -> str:
    """``ticks`` (units of the smallest part shown) as the hours, minutes and seconds the
    format names and no others (``h:mm`` is ``18:00``, ``mm:ss`` is ``00:09``), each two
    digits at least: the time of day, or all of the largest unit under ``[h]``, ``[mm]``,
    ``[ss]``; with the tenths or hundredths of a second it names."""
    seconds, fraction = divmod(ticks, 10**shown.decimals)
    elapsed = shown.elapsed
    values = (
        ("h", shown.hours, seconds // 3600 if elapsed == "h" else seconds // 3600 % 24),
        ("m", shown.minutes, seconds // 60 if elapsed == "m" else seconds % 3600 // 60),
        ("s", shown.seconds, seconds if elapsed == "s" else seconds % 60),
    )
    text = ":".join(f"{value:02d}" for _, named, value in values if named)
    if shown.seconds and shown.decimals:
        text += f".{fraction:0{shown.decimals}d}"
    return text


def iso_text(text: str) -> str:
    """A ``t="d"`` cell's ISO 8601 value (``2021-12-31T23:44:51.894``) as every other date
    is shown: ``2021-12-31 23:44:52``, ``2021-12-31``, ``23:44:52``; other text as it is."""
    value = text.strip()
    try:
        if "-" in value[:5] and len(value) >= 10:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = _dt.datetime.combine(_dt.date(1899, 12, 30), _dt.time.fromisoformat(value))
    except ValueError:
        return text
    moment = moment.replace(tzinfo=None, microsecond=0) + _dt.timedelta(
        seconds=round(moment.microsecond / 1e6)
    )
    if moment.date() == _dt.date(1899, 12, 30) and "-" not in value[:5]:
        return moment.strftime("%H:%M:%S")
    if moment.time() == _dt.time(0):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M:%S")
