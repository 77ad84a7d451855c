"""The write-ahead side of the ledger: a write is recorded before it is sent.

Before a latch (or an undo's unlatch or latch-back) leaves, ``job.db`` durably holds the
customer, what the read showed it held and what is being written (status ``writing``). A
write that then never leaves is taken back. One whose answer never came, or whose row ended
without Fusebill settling it (a lost answer and a failed read-back, a stop, kill -9), stays
open: a later command that finds the customer holding what was being written counts that
latch as this job's change, and ``undo`` reads it and puts it back.
"""

from __future__ import annotations

from collections.abc import Callable

from batch_latch.clock import now_iso
from batch_latch.jobfolder.ledger import WRITING, Entry, Ledger
from batch_latch.jobfolder.rerun_rules import Unanswered
from batch_latch.send.decisions import Task
from batch_latch.vocab import Change, Status

LANDED = "latched by an earlier run whose answer was lost (a later read showed it)"


class LedgerJournal:
    """:class:`~batch_latch.send.decisions.Journal` over the job's ledger; ``row`` gives a
    task's sheet row."""

    def __init__(self, ledger: Ledger, row: Callable[[int], int | None]) -> None:
        self._ledger = ledger
        self._row = row

    def intend(self, task: Task, geotab_id: str, change: Change, previous: str) -> int:
        entry = Entry(
            task.fusebill_id,
            geotab_id,
            WRITING,
            change.value,
            previous,
            at=now_iso(),
            row=self._row(task.index),
        )
        return self._ledger.intend(entry)

    def withdraw(self, token: int) -> None:
        self._ledger.withdraw(token)

    def landed(self, task: Task, unanswered: Unanswered) -> None:
        previous = task.origin.previous if task.origin else unanswered.previous
        self._ledger.record(
            Entry(
                task.fusebill_id,
                unanswered.geotab_id,
                Status.SUCCESS.value,
                unanswered.change.value,
                previous,
                message=LANDED,
                at=now_iso(),
                row=self._row(task.index),
                settles=True,
            )
        )
