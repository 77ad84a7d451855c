"""The one clock helper: UTC now, and how the tool writes a moment (reports, the ledger,
lock, summary: ``2026-12-03T08:36:37Z``) and names a run folder or a set-aside file."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Seconds, with ``Z``: what every file of the tool says a moment was."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def folder_stamp(moment: datetime) -> str:
    """``20261203T083637.123Z``: milliseconds, so two commands in one second still sort in
    the order they ran."""
    moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z"


def file_stamp(moment: datetime) -> str:
    """``20261203T083637Z``, for a file set aside (``checkpoint-<stamp>.csv.old``)."""
    return f"{moment.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"
