"""The types of the command-line options' values: each parses one option's text or
says, in one line, what it expected."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# The options' defaults and bounds (the contract's), owned here and imported by every user:
# the parser, Settings, the summary, the estimator, status and the generated reference.
DEFAULT_RATE = 10.0
DEFAULT_WORKERS = 8
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 30.0
DEFAULT_READ_BATCH = 100
MAX_READ_BATCH = 500


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def read_batch_type(text: str) -> int:
    value = positive_int(text)
    if value > MAX_READ_BATCH:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_READ_BATCH}, got {text!r}")
    return value


#: What ``--delimiter`` takes: the four the help names, by character or by name.
DELIMITERS = {",": ",", ";": ";", "|": "|", "tab": "tab", "\\t": "tab", "\t": "tab"}
DELIMITERS.update({"comma": ",", "semicolon": ";", "pipe": "|"})


def delimiter_type(text: str) -> str:
    value = DELIMITERS.get(text.strip().lower() if text.strip() else text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected , ; tab or |, got {text!r}")
    return value


@dataclass(frozen=True)
class QuotaReserve:
    """``--quota-reserve``: requests of the account's day this tool never spends, as a count
    or a percent of ``X-Rate-Limit-Limit-Day``."""

    text: str  # as given: "10%", "500", "0"
    count: int | None = None
    percent: float | None = None

    def of(self, limit_day: int | None) -> int:
        """The reserve in requests, once the account's daily limit is known (0 before)."""
        if self.count is not None:
            return self.count
        if self.percent is None or not limit_day:
            return 0
        return int(limit_day * self.percent / 100.0)

    def __str__(self) -> str:
        return self.text


def parse_reserve(text: str) -> QuotaReserve | None:
    """A reserve as ``--quota-reserve`` or a ``summary.json`` gives it; None if malformed."""
    given = text.strip()
    try:
        if given.endswith("%"):
            percent = float(given[:-1])
            return QuotaReserve(given, percent=percent) if 0 <= percent < 100 else None
        count = int(given)
    except ValueError:
        return None
    return QuotaReserve(given, count=count) if count >= 0 else None


def quota_reserve(text: str) -> QuotaReserve:
    """``--quota-reserve``'s type."""
    found = parse_reserve(text)
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected a count of requests (500) or a percent of the daily limit (10%), "
            f"got {text!r}"
        )
    return found


DEFAULT_RESERVE = quota_reserve("10%")


def fusebill_id_type(text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) < 2**63:
        raise argparse.ArgumentTypeError(f"expected a fusebillId (digits, 1 or more), got {text!r}")
    return int(value)
