"""The write-ahead side of the checkpoint: a write is recorded before it is sent.

Before a latch (or an undo's unlatch or latch-back) leaves, the checkpoint durably holds
the customer, what the read showed it held and what is being written (status
``writing``). Its outcome follows as a record of its own. A write whose answer never came
(kill -9, SIGTERM with requests in flight, a lost answer, a stop mid-request) stays the
customer's latest record, so a later command that finds the customer holding what was being
written counts that latch as this job's change, and ``undo`` puts it back.
"""

from __future__ import annotations

from batch_latch.clock import now_iso
from batch_latch.jobfolder.checkpoint import WRITING, Checkpoint, Record
from batch_latch.jobfolder.earlier import Unanswered
from batch_latch.send.decisions import Task
from batch_latch.vocab import Change, Status

LANDED = "latched by an earlier run whose answer was lost (a later read showed it)"


class CheckpointJournal:
    """:class:`~batch_latch.send.decisions.Journal` over the job's checkpoint."""

    def __init__(self, store: Checkpoint) -> None:
        self._store = store

    def intend(self, task: Task, geotab_id: str, change: Change, previous: str) -> None:
        self._store.record(
            Record(
                task.fusebill_id,
                geotab_id,
                WRITING,
                None,
                "",  # the record says it: WRITING_NOTE, shown when read back
                "",
                now_iso(),
                change.value,
                previous,
            )
        )

    def landed(self, task: Task, unanswered: Unanswered) -> None:
        previous = task.origin.previous if task.origin else unanswered.previous
        self._store.record(
            Record(
                task.fusebill_id,
                unanswered.geotab_id,
                Status.SUCCESS.value,
                None,
                LANDED,
                "",
                now_iso(),
                unanswered.change.value,
                previous,
            )
        )
