"""``batch-latch undo OUT``: put back what this job's latches replaced.

The command supplies undo's targets (every customer the job's ledger says it latched and
has not put back, with what each held before the job's first change) and its columns;
the row logic (``send.undo_logic``) and the loop (``Session.drive``) are the engine's,
shared with run and plan, so an interrupted undo is finished by the next one.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.errors import BatchLatchError, NotAJob
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder import history, job
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.jobfolder.records import as_mask
from batch_latch.jobfolder.rerun_rules import Target, Targets
from batch_latch.jobfolder.state_reads import KeptState
from batch_latch.outcome import (
    IntColumn,
    LiveOutcome,
    ResultColumns,
    RowOutcome,
    TextColumn,
)
from batch_latch.send.attempt_loop import QuotaHook
from batch_latch.send.decisions import RowLogic
from batch_latch.send.estimate import Pace, duration, estimate, requests_needed
from batch_latch.send.journal import LedgerJournal
from batch_latch.send.progress import Progress
from batch_latch.send.session import Session
from batch_latch.send.undo_logic import UndoLogic, UndoTask
from batch_latch.settings import URL_VARIABLE, Settings
from batch_latch.sheet import loader
from batch_latch.vocab import RECORDED, Change, Status, plural

NOTHING = "Nothing to undo: this job has latched no customer."


def check_job(out: Path) -> None:
    if not job.exists(out):
        raise NotAJob(
            f"{out} is not a batch-latch job folder (no job.db); give the --out folder of "
            "the run to undo"
        )


def targets(settings: Settings, ledger: Ledger) -> tuple[Targets, str, KeptState]:
    """Every customer this job wrote to and has not put back, from the whole ledger (what
    ``--fresh`` starts set aside included), and the API they were written to."""
    url = settings.base_url
    if settings.dry_run:
        bound = ledger.bound_to()
        if not settings.env.get(URL_VARIABLE):
            # Sends nothing and needs no key: nor FUSEBILL_BASE_URL; the job's own API it is.
            url = bound or url
        else:  # a URL that is set and differs: refused
            job.refuse_other_api(settings.out, bound, url)
    memory = KeptState(ledger, url)
    return memory.undo_targets(), url, memory


def planned_columns(found: Targets, unlatch_unknown: bool, rows: pa.Array) -> ResultColumns:
    """What undo would do for each customer, without asking Fusebill (``undo --dry-run``)."""
    n = len(found)
    set_to, previous = found.set_to, found.previous
    known = np.asarray(found.known, dtype=bool)
    has_previous = as_mask(pc.not_equal(previous, ""))
    back_at = np.flatnonzero(known & has_previous)
    unlatch_at = np.flatnonzero(~(known & has_previous) & (known | unlatch_unknown))
    alone_at = np.flatnonzero(~known) if not unlatch_unknown else np.zeros(0, np.int64)

    def join(at: np.ndarray, *parts: pa.Array | str) -> pa.Array:
        """The message of the targets ``at``, as its own dictionary (one entry a row): they
        are nearly all distinct, so encoding them would hash each for nothing."""
        taken = pa.array(at, pa.int64())
        got = pc.binary_join_element_wise(
            *(p if isinstance(p, str) else pc.take(p, taken) for p in parts), ""
        )
        return pa.DictionaryArray.from_arrays(pa.array(np.arange(len(at), dtype=np.int32)), got)

    status, change = TextColumn(Status.VALID.value, n), TextColumn(Change.UNDO.value, n)
    text = TextColumn("", n)
    text.put(
        back_at,
        join(back_at, "would latch back to '", previous, "' if it still holds '", set_to, "'"),
    )
    text.put(
        unlatch_at,
        join(
            unlatch_at,
            "would unlatch if it still holds '",
            set_to,
            "' (it held no geotabId before)",
        ),
    )
    text.put(alone_at, "would leave alone: what it held before is unknown (latched with --no-read)")
    return _columns(
        found,
        status,
        text,
        TextColumn("", n),
        change,
        TextColumn("", n),
        IntColumn(n, nullable=True),
        IntColumn(n, nullable=False),
        rows,
    )


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What undo reads of its job before it starts: its targets in sheet-row order, each
    one's sheet row, the sheet's own columns of the latch it puts back, the kept state."""

    found: Targets
    rows: pa.Array
    extras: dict[str, pa.Array]
    memory: KeptState


def prepare(settings: Settings, ledger: Ledger) -> Prepared:
    """Undo's targets, read from the ledger only (it writes nothing)."""
    found, _, memory = targets(settings, ledger)
    found, rows, runs = _in_sheet_order(memory, found)
    return Prepared(found, rows, sheet_columns(settings.out, rows, runs), memory)


def undo(
    settings: Settings,
    ledger: Ledger | None,
    prepared: Prepared | None = None,
    *,
    service: FusebillService | None = None,
    progress: Progress | None = None,
    stderr: TextIO | None = None,
    on_quota_wait: QuotaHook | None = None,
) -> LiveOutcome:
    """Undo the job in ``settings.out``; a dry run returns only the columns it would report."""
    err = stderr or sys.stderr
    assert ledger is not None
    got = prepared or prepare(settings, ledger)
    found, rows, extras, memory = got.found, got.rows, got.extras, got.memory
    requests = requests_needed(len(found), reads=True, writes=True, read_batch=settings.read_batch)
    if settings.dry_run:
        if not found:
            print(NOTHING, file=err)
        else:
            print(_dry_run_words(settings, len(found)), file=err)
        planned = planned_columns(found, settings.unlatch_unknown, rows)
        return LiveOutcome(planned, extras=extras)
    tasks = [UndoTask(i, found[i]) for i in range(len(found))]
    options = settings.engine(on_quota_wait)
    session: Session[UndoTask] = Session.open(options, service, progress, err, planned=requests)
    if not found:
        session.notices.say(NOTHING)
        session.service.close()
        return session.outcome(columns(found, [], rows), "")
    reader = session.open_reader([t.target.fusebill_id for t in tasks])
    journal = LedgerJournal(ledger, lambda i: rows[i].as_py())
    logic = UndoLogic(
        RowLogic(session.service, session.loop, journal=journal, reader=reader),
        settings.unlatch_unknown,
        memory.unanswered(found.fusebill_ids.tolist()),
    )
    session.notices.say(
        f"Undoing {plural(len(tasks), 'customer')} latched by this job: up to "
        f"{plural(requests, 'request')} ({_reads_words(settings.read_batch)}, then a "
        "write where it still holds what the job set) at up to "
        f"{settings.rate:g} requests/s: {duration(requests / settings.rate)}."
    )

    def entry(task: UndoTask, outcome: RowOutcome) -> Entry | None:
        if outcome.status.value not in RECORDED:
            return None
        return _entry(task.target, outcome, rows[task.index].as_py())

    outcomes, message = session.drive(tasks, logic.process, ledger, entry)
    return dataclasses.replace(
        session.outcome(columns(found, outcomes, rows), message), extras=extras
    )


def _in_sheet_order(memory: KeptState, found: Targets) -> tuple[Targets, pa.Array, list[str]]:
    """The targets in the sheet-row order of the latches undo puts back (those of unknown
    row last), each one's sheet row (null when unknown) and the run folder of that latch."""
    if not len(found):
        return found, pa.array([], pa.int64()), []
    rows, each = memory.latch_rows(found)
    known = np.asarray(rows.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    numbers = np.asarray(rows.fill_null(0).to_numpy(), dtype=np.int64)
    order = np.lexsort((np.arange(len(each)), numbers, ~known))  # stable: by customer within
    runs: list[str] = np.asarray(each, dtype=object)[order].tolist()
    return found.take(order), rows.take(pa.array(order)), runs


def sheet_columns(out: Path, rows: pa.Array, runs: list[str]) -> dict[str, pa.Array]:
    """The sheet's own columns (Account Name...) of the latch each undo target puts back,
    from the copy of its input in that latch's run folder; a copy that is gone or cannot be
    read leaves its rows' cells empty. Each distinct input file is read once, and its
    values are taken for all its targets at once."""
    copies: dict[str, str] = {}  # run folder -> its input copy's SHA-256 ("" when none)
    sheets: dict[str, loader.Sheet | None] = {}  # by SHA-256 (None: cannot be read)
    for run in dict.fromkeys(runs):
        copy = _input_copy(out, run)
        try:
            copies[run] = history.sha256(copy) if copy is not None else ""
        except OSError:  # unreadable: as if gone (its rows' cells stay empty)
            copies[run], copy = "", None
        if copy is not None and copies[run] not in sheets:
            sheets[copies[run]] = _loaded(copy)
    # Each target's run folder as a code (a few distinct folders among a million targets).
    encoded = pc.dictionary_encode(pa.array(runs, pa.string()))
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    by_sheet: dict[str, list[int]] = {}
    for code, run in enumerate(encoded.dictionary.to_pylist()):
        if copies[run]:
            by_sheet.setdefault(copies[run], []).append(code)
    n = len(runs)
    columns: dict[str, np.ndarray] = {}
    for digest, wanted in by_sheet.items():
        sheet = sheets.get(digest)
        if sheet is None:
            continue
        spots = np.flatnonzero(np.isin(codes, wanted))  # in target order, as before
        found = pc.index_in(rows.take(pa.array(spots)), value_set=sheet.rows)
        for header, values in sheet.extras.items():
            column = columns.setdefault(header, np.full(n, None, dtype=object))
            column[spots] = pc.take(values, found).to_numpy(zero_copy_only=False)
    return {h: pa.array(v, pa.string()) for h, v in columns.items()}


def _loaded(copy: Path) -> loader.Sheet | None:
    """An input copy loaded; None when it cannot be read."""
    try:
        return loader.load(copy)
    except (BatchLatchError, OSError):
        return None


def _input_copy(out: Path, run: str) -> Path | None:
    """The copy of its input a run folder keeps (``input-<name>``), if any."""
    folder = out / history.RUNS / run
    found = sorted(folder.glob("input-*")) if run and folder.is_dir() else []
    return found[0] if found else None


def _dry_run_words(settings: Settings, customers: int) -> str:
    """What ``undo`` of these customers will cost, from the one estimator."""
    pace = Pace(settings.rate, None, None, 0)
    cost = estimate(customers, pace, reads=True, writes=True, read_batch=settings.read_batch)
    return (
        f"Undo would look at {plural(customers, 'customer')}: up to "
        f"{plural(cost.requests, 'request')} ({_reads_words(settings.read_batch)}, then a "
        f"write where it still holds what the job set), {cost.text}."
    )


def _entry(target: Target, outcome: RowOutcome, row: int | None) -> Entry:
    restored = target.origin.previous if target.origin.known else ""
    ok = outcome.status is Status.SUCCESS
    return Entry(
        target.fusebill_id,
        restored if ok else target.set_to,
        outcome.status.value,
        Change.UNDO.value,  # also when nothing was restored: see Earlier.latest
        target.origin.previous,
        outcome.error_key,
        outcome.http_status,
        outcome.message,
        outcome.finished_at,
        row,
        outcome.settles,
    )


def columns(found: Targets, outcomes: list[RowOutcome], rows: pa.Array) -> ResultColumns:
    """One row per customer: the geotabId the job had set, and what undo put back."""
    n = len(found)
    status, message, key = TextColumn("", n), TextColumn("", n), TextColumn("", n)
    change, finished = TextColumn("", n), TextColumn("", n)
    http, attempts = IntColumn(n, nullable=True), IntColumn(n, nullable=False)
    at = np.arange(n, dtype=np.int64)
    if n:
        status.put(at, pa.array([o.status.value for o in outcomes]))
        message.put(at, pa.array([o.message for o in outcomes]))
        key.put(at, pa.array([o.error_key for o in outcomes]))
        change.put(at, pa.array([o.change.value for o in outcomes]))
        finished.put(at, pa.array([o.finished_at for o in outcomes]))
        http.put(at, pa.array([o.http_status for o in outcomes], pa.int64()))
        attempts.put(at, pa.array([o.attempts for o in outcomes], pa.int64()))
    return _columns(found, status, message, key, change, finished, http, attempts, rows)


def _columns(
    found: Targets,
    status: TextColumn,
    message: TextColumn,
    key: TextColumn,
    change: TextColumn,
    finished: TextColumn,
    http: IntColumn,
    attempts: IntColumn,
    rows: pa.Array,
) -> ResultColumns:
    """``row``: the sheet row of the latch each customer's undo puts back (from the
    ledger), empty when it is not known."""
    return ResultColumns(
        row=rows,
        fusebillId=pc.cast(pa.array(found.fusebill_ids), pa.string()),
        geotabId=found.set_to,
        status=status.array(),
        http_status=http.array(),
        attempts=attempts.array(),
        message=message.array(),
        error_key=key.array(),
        change=change.array(),
        previous_geotabId=found.previous,
        finished_at=finished.array(),
    )


def _reads_words(read_batch: int) -> str:
    """How undo reads its customers: through the list, or one request each."""
    if read_batch > 1:
        return f"reads of up to {plural(read_batch, 'customer')} a request"
    return "a read each"
