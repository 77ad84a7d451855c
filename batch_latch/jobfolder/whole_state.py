"""The state of a job taken in whole (a v3 job into a new ``job.db``), from its lines' columns.

The rules of ``ledger_views`` cost a handful of index searches a pair; a million pairs take
tens of seconds. Most customers of a taken-in job are *plain*, and for them the rules come
down to their latest line, which columns give at once:

- a pair is plain when its customer's lines other than undo's all name one geotabId (one
  pair, so no other pair's write can make it ``replaced``), no undo of the customer
  succeeded (nothing is ``undone``), every write's intent of the customer has a later line
  that settles it (nothing is ``writing``), and the pair had a success (it is not ``fixed``,
  which only a pair without one can be): its status is then its latest outcome's (a sending
  command's first, a plan's when none had it), with that line's command, row and error key;
- a customer is closed when every write's intent has a later line that settles it: its state
  comes from its successful writes by a sending command alone (``restored`` when the latest
  is an undo's, else ``latched``; what it held before is the first write's ``previous``).

Every other customer's state is made by the rules themselves (``ledger_views.fill_pairs``,
``fill_customers``); ``tests/jobfolder/test_whole_state.py`` pins that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.jobfolder.ledger_views import PAIR_WORDS, STATE_WORDS
from batch_latch.jobfolder.records import as_mask

#: The columns :func:`plain_state` reads, as ``log`` names them (``seq`` in order).
COLUMNS = (
    "seq",
    "command",
    "row",
    "fusebill_id",
    "geotab_id",
    "previous",
    "status",
    "change",
    "error_key",
    "settles",
)
_WRITES = ("new", "relatch", "unknown")
_NONE = -1


@dataclass(frozen=True)
class State:
    """Rows of ``pair_state`` and ``customer_state`` (columns in their order), and the
    customers whose pairs (``rules_pairs``) or state (``rules_customers``) the rules make."""

    pairs: Sequence[tuple[object, ...]]
    customers: Sequence[tuple[object, ...]]
    rules_pairs: Sequence[int]
    rules_customers: Sequence[int]


def plain_state(lines: pa.Table, sending: list[int]) -> State:
    """The state of the plain pairs and closed customers of ``lines`` (every line of the
    job, in ``seq`` order); ``sending``: the ids of the commands that send (run, undo)."""
    if lines.num_rows == 0:
        return State([], [], [], [])
    fid = _ints(lines["fusebill_id"])
    by = _ByCustomer.of(fid)
    m = _Marks.of(lines, sending)
    latest = by.last(m.other & ~m.writing & m.sends)  # a sending command's outcome first
    latest = np.where(latest != _NONE, latest, by.last(m.other & ~m.writing))
    intent = by.last(m.writing)
    open_ = (intent != _NONE) & (intent >= by.last(m.settles))  # no line after it settles it
    plain = (
        (by.last(m.other) != _NONE)
        & ~_several_geotab_ids(lines, by, m.other)
        & ~by.any(m.undo & m.success)
        & ~open_
        & (by.last(m.other & m.success) != _NONE)
    )
    pairs = _pair_rows(lines, fid, latest[plain], by.last(m.other)[plain])
    holds = by.last(m.sends & m.success & (m.writes | m.undo))
    closed = ~open_ & (holds != _NONE)
    first_write = by.first(m.sends & m.success & m.writes)
    customers = _customer_rows(lines, fid, holds[closed], first_write[closed], m.undo)
    ids = fid[by.order][by.starts]
    return State(pairs, customers, ids[~plain].tolist(), ids[open_].tolist())


@dataclass(frozen=True)
class _Marks:
    """Per line, what the rules ask of it."""

    writing: np.ndarray  # a write's intent
    success: np.ndarray
    undo: np.ndarray  # undo's change
    other: np.ndarray  # any change but undo's
    writes: np.ndarray  # a change that wrote (new, relatch, unknown)
    settles: np.ndarray
    sends: np.ndarray  # a line of a command that sends

    @classmethod
    def of(cls, lines: pa.Table, sending: list[int]) -> _Marks:
        undo = _is(lines["change"], "undo")
        return cls(
            writing=_is(lines["status"], "writing"),
            success=_is(lines["status"], "success"),
            undo=undo,
            other=~undo,
            writes=as_mask(pc.is_in(lines["change"], value_set=pa.array(_WRITES))),
            settles=as_mask(pc.cast(lines["settles"], pa.bool_())),
            sends=np.isin(_ints(lines["command"]), np.array(sending, np.int64)),
        )


@dataclass(frozen=True)
class _ByCustomer:
    """The lines grouped by customer (in fusebill_id order), each group in seq order."""

    order: np.ndarray  # line positions, group by group
    starts: np.ndarray  # where each group starts in ``order``
    customer: np.ndarray  # per line, its group's number

    @classmethod
    def of(cls, fid: np.ndarray) -> _ByCustomer:
        order = np.argsort(fid, kind="stable")
        head = np.empty(len(fid), bool)
        head[0] = True
        np.not_equal(fid[order][1:], fid[order][:-1], out=head[1:])
        customer = np.empty(len(fid), np.int64)
        customer[order] = np.cumsum(head) - 1
        return cls(order, np.flatnonzero(head), customer)

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per customer, the position of its latest line in ``mask`` (-1: none)."""
        pos = np.arange(len(mask), dtype=np.int64)
        return np.maximum.reduceat(np.where(mask, pos, _NONE)[self.order], self.starts)

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per customer, the position of its first line in ``mask`` (-1: none)."""
        n = len(mask)
        got = np.minimum.reduceat(np.where(mask, np.arange(n), n)[self.order], self.starts)
        return np.where(got == n, _NONE, got)

    def any(self, mask: np.ndarray) -> np.ndarray:
        return np.logical_or.reduceat(mask[self.order], self.starts)


def _several_geotab_ids(lines: pa.Table, by: _ByCustomer, other: np.ndarray) -> np.ndarray:
    """Per customer, whether its lines other than undo's name more than one geotabId."""
    kept = by.order[other[by.order]]
    geotabs = lines["geotab_id"].take(pa.array(kept))
    differs = ~as_mask(pc.equal(geotabs[1:], geotabs[:-1]))
    same_customer = by.customer[kept][1:] == by.customer[kept][:-1]
    several = np.zeros(len(by.starts), bool)
    several[by.customer[kept][1:][differs & same_customer]] = True
    return several


def _pair_rows(
    lines: pa.Table, fid: np.ndarray, at: np.ndarray, row_from: np.ndarray
) -> list[tuple[object, ...]]:
    """``pair_state`` rows of the lines ``at``; a line without a sheet row takes that of
    the line ``row_from`` (the customer's latest)."""
    taken = pa.array(at)
    rows = pc.coalesce(lines["row"].take(taken), lines["row"].take(pa.array(row_from)))
    return list(
        zip(
            fid[at].tolist(),
            lines["geotab_id"].take(taken).to_pylist(),
            _coded(lines["status"].take(taken), PAIR_WORDS),
            _ints(lines["command"])[at].tolist(),
            rows.to_pylist(),
            lines["error_key"].take(taken).to_pylist(),
        )
    )


def _customer_rows(
    lines: pa.Table, fid: np.ndarray, holds: np.ndarray, befores: np.ndarray, undo: np.ndarray
) -> list[tuple[object, ...]]:
    """``customer_state`` rows: what each holds (line ``holds``), what it held before its
    first write (line ``befores``, -1: none) and whether that write was blind."""
    first = pa.array(np.where(befores == _NONE, 0, befores))
    previous = lines["previous"].take(first).to_pylist()
    before = [p if b != _NONE and p else None for p, b in zip(previous, befores)]
    first_change = lines["change"].take(first).to_pylist()
    blind = [1 if b != _NONE and c == "unknown" else None for c, b in zip(first_change, befores)]
    state = np.where(undo[holds], STATE_WORDS.index("restored"), STATE_WORDS.index("latched"))
    seq = _ints(lines["seq"])[holds].tolist()
    return list(zip(fid[holds].tolist(), before, seq, state.tolist(), blind))


def _coded(words: pa.ChunkedArray, known: tuple[str, ...]) -> list[object]:
    """Words as ``pair_state`` keeps them: a known word by its number, another as itself."""
    codes = pc.index_in(words, value_set=pa.array(known))
    if codes.null_count == 0:
        return list(codes.to_numpy().tolist())
    return [w if c is None else c for w, c in zip(words.to_pylist(), codes.to_pylist())]


def _ints(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(column, 0).to_numpy(), np.int64)


def _is(column: pa.ChunkedArray | pa.Array, word: str) -> np.ndarray:
    return as_mask(pc.equal(column, word))
