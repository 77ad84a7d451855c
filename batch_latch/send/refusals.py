"""The stop on systematic refusals: a key for the wrong account, a sheet of the wrong
kind, an endpoint that refuses everything should not burn the account's day row by row.

When ``STREAK`` rows in a row, in the order they end, end with Fusebill refusing them (a
4xx to a write other than 404, 408, 409 and 429, or a customer not found), the command
stops: exit 3, stop_reason ``systematic_refusal``. Any other ending ends the streak, a
refusal of the tool's own (``relatch_refused``, ``stale_plan``) included.
"""

from __future__ import annotations

import threading

from batch_latch.jobfolder.rerun_rules import is_refusal
from batch_latch.outcome import RowOutcome
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.vocab import Status, StopReason

STREAK = 25


def refused_by_fusebill(outcome: RowOutcome) -> bool:
    if outcome.status is Status.NOT_FOUND:
        return True
    # attempts counts the row's write requests: a refused read is not a refused write.
    return (
        outcome.status is Status.FAILED and outcome.attempts > 0 and is_refusal(outcome.error_key)
    )


class Refusals:
    """Counts the streak as rows end (thread-safe); stops the loop's throttle at ``STREAK``."""

    def __init__(self, loop: AttemptLoop, *, off: bool = False, streak: int = STREAK) -> None:
        self._loop = loop
        self._off = off
        self._streak = streak
        self._count = 0
        self._lock = threading.Lock()

    def ended(self, outcome: RowOutcome) -> None:
        with self._lock:
            self._count = self._count + 1 if refused_by_fusebill(outcome) else 0
            reached = self._count == self._streak and not self._off
        if reached:
            last = " ".join(outcome.message.split())[:200]
            self._loop.stop.note(
                f"{self._streak} rows in a row were refused by Fusebill (the last: {last})"
            )
            self._loop.throttle.stop(StopReason.SYSTEMATIC_REFUSAL)
