"""A live ``run`` or ``plan``: which rows to send, the pool that sends them, their columns.

Rows earlier runs settled are not sent again (see ``state_reads``); the rest go through the
worker pool, each row's outcome durable in the ledger before it counts as done (a plan
writes nothing to Fusebill and records nothing).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.jobfolder.plans import Plan
from batch_latch.jobfolder.state_reads import KeptState
from batch_latch.outcome import Builder, LiveOutcome, RowOutcome, Settled
from batch_latch.send.decisions import RowLogic, Task
from batch_latch.send.estimate import duration, requests_needed
from batch_latch.send.journal import LedgerJournal
from batch_latch.send.options import EngineOptions, RowRules
from batch_latch.send.progress import Progress
from batch_latch.send.refusals import Refusals
from batch_latch.send.session import Session
from batch_latch.sheet.validate import Verdicts
from batch_latch.vocab import RECORDED, Change, Status, plural


def _valid_rows(verdicts: Verdicts) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Positions, fusebillIds and geotabIds of the valid rows."""
    valid = pc.equal(verdicts.status, Status.VALID.value)
    positions = np.flatnonzero(np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool))
    fids, gids = verdicts.fusebill_id, verdicts.geotab
    if len(positions) < len(verdicts):  # else every row is valid: nothing to pick
        take = pa.array(positions)
        fids, gids = pc.take(fids, take), pc.take(gids, take)
    return positions, np.asarray(fids.to_numpy(), dtype=np.int64), gids


def _plan_settled(settled: Settled) -> Settled:
    """A plan shows rows latched earlier as ``valid``: a run would not send them."""
    success = pc.equal(settled.status, Status.SUCCESS.value)
    return Settled(
        where=settled.where,
        status=pc.if_else(success, Status.VALID.value, settled.status),
        http_status=settled.http_status,
        message=pc.if_else(
            success, "latched earlier by this job; a run would not send it", settled.message
        ),
        error_key=settled.error_key,
        change=pc.if_else(success, Change.UNCHANGED.value, settled.change),
        previous=settled.previous,
        finished_at=settled.finished_at,
        notes=settled.notes,
    )


def latch(
    options: EngineOptions,
    rules: RowRules,
    verdicts: Verdicts,
    *,
    ledger: Ledger,
    service: FusebillService | None = None,
    progress: Progress | None = None,
    stderr: TextIO | None = None,
    plan: Plan | None = None,
) -> LiveOutcome:
    """Run (or plan) every valid row that earlier runs did not settle; with ``plan``, write
    only what that plan showed."""
    err = stderr or sys.stderr
    planning = rules.planning
    memory = KeptState(ledger, options.base_url)
    positions, settled, tasks = _tasks(rules, verdicts, memory, plan)
    rows = np.asarray(verdicts.rows.to_numpy(), dtype=np.int64)
    reads = planning or rules.read_first
    requests = requests_needed(
        len(tasks), reads=reads, writes=not planning, read_batch=options.read_batch
    )
    session: Session[Task] = Session.open(options, service, progress, err, planned=requests)
    _announce(session, len(tasks), requests, len(settled.where), rules)
    logic = RowLogic(
        session.service,
        session.loop,
        read_first=rules.read_first,
        allow_relatch=rules.allow_relatch,
        write=not planning,
        journal=None if planning else LedgerJournal(ledger, lambda i: int(rows[i])),
        reader=session.open_reader([t.fusebill_id for t in tasks], reads=reads),
        apply_plan=plan is not None,
    )
    refusals = Refusals(session.loop, off=rules.keep_going)
    kept = (*RECORDED, Status.VALID.value) if planning else RECORDED

    def entry(task: Task, outcome: RowOutcome) -> Entry | None:
        if outcome.status.value not in kept:
            return None
        return _entry(task, outcome, int(rows[task.index]), planning)

    notes = {int(positions[j]): text for j, text in settled.notes.items()}
    outcomes, message = session.drive(
        tasks, logic.process, ledger, entry, after=refusals.ended, notes=notes
    )
    builder = Builder(verdicts)
    settled_rows = _plan_settled(settled) if planning else settled
    builder.settled(dataclasses.replace(settled_rows, where=positions[settled_rows.where]))
    builder.outcomes([t.index for t in tasks], outcomes)
    live = session.outcome(builder.columns(), message)
    if planning:
        live = dataclasses.replace(live, held=_held(len(verdicts), tasks, outcomes))
    return live


def _held(n: int, tasks: list[Task], outcomes: list[RowOutcome]) -> pa.Array:
    """Per row, what a plan's read found (null for rows it did not read)."""
    held: list[str | None] = [None] * n
    for task, outcome in zip(tasks, outcomes):
        held[task.index] = outcome.held
    return pa.array(held, pa.string())


def _tasks(
    rules: RowRules,
    verdicts: Verdicts,
    memory: KeptState,
    plan: Plan | None = None,
) -> tuple[np.ndarray, Settled, list[Task]]:
    """The valid rows' positions, what earlier runs settled of them (since the newest
    ``--fresh``), and the rest as tasks; what each customer held before the job and its
    open writes come from the job's whole memory."""
    positions, fids, gids = _valid_rows(verdicts)
    settled = memory.settled(
        fids, gids, retry_not_found=rules.retry_not_found, retry_failed=rules.retry_failed
    )
    todo = np.ones(len(positions), dtype=bool)
    todo[settled.where] = False
    todo_at = np.flatnonzero(todo)
    texts = pc.take(gids, pa.array(todo_at)).to_pylist() if len(todo_at) else []
    asked = fids[todo_at].tolist() if len(todo_at) else []
    origins, lost = memory.origins(asked), memory.unanswered(asked)
    planned = plan.entries(fids[todo_at]) if plan is not None else [None] * len(asked)
    tasks = [
        Task(int(positions[j]), fid, text, origins.get(fid), lost.get(fid), entry)
        for j, fid, text, entry in zip(todo_at.tolist(), asked, texts, planned)
    ]
    return positions, settled, tasks


def _entry(task: Task, outcome: RowOutcome, row: int, planning: bool) -> Entry:
    """A row's outcome as the ledger keeps it; a plan's reads settle no write (only a
    command that can record what it finds as this job's change does)."""
    return Entry(
        task.fusebill_id,
        task.geotab_id,
        outcome.status.value,
        outcome.change.value,
        outcome.previous,
        outcome.error_key,
        outcome.http_status,
        outcome.message,
        outcome.finished_at,
        row,
        outcome.settles and not planning,
    )


def _announce(
    session: Session[Task], rows: int, requests: int, settled: int, rules: RowRules
) -> None:
    options, planning = session.options, rules.planning
    note = f" ({plural(settled, 'row')} settled by earlier runs are not sent again)"
    note = note if settled else ""
    if rows == 0:
        session.notices.say(f"Nothing to send{note}.")
        return
    writes = not planning
    reads = planning or rules.read_first
    batch = options.read_batch
    noun = "request" if requests == 1 else "requests"
    if not reads:
        what = noun
    elif batch > 1:
        then = ", then a write each" if writes else ""
        what = f"{noun} (reads of up to {batch:,} customers a request{then})"
    else:
        what = (
            f"{noun} (a read, then a write)" if writes else ("read" if requests == 1 else "reads")
        )
    most = "up to " if reads and writes else ""
    session.notices.say(
        f"{'Planning' if planning else 'Sending'} {plural(rows, 'row')} to {options.base_url}: "
        f"{most}{requests:,} {what} at up to {options.rate:g} requests/s with "
        f"{plural(options.workers, 'worker')}: {duration(requests / options.rate)}{note}. The "
        "account's own limits may add pauses; they are estimated once its first answer "
        "shows them."
    )
