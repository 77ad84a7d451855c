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
    n = lines.num_rows
    if n == 0:
        return State([], [], [], [])
    fid = _ints(lines["fusebill_id"])
    status = lines["status"]
    change = lines["change"]
    writing = _is(status, "writing")
    success = _is(status, "success")
    undo = _is(change, "undo")
    writes = _bools(pc.is_in(change, value_set=pa.array(_WRITES)))
    settles = _bools(pc.cast(lines["settles"], pa.bool_()))
    sends = np.isin(_ints(lines["command"]), np.array(sending, np.int64))
    other = ~undo

    order = np.argsort(fid, kind="stable")  # each customer's lines together, in seq order
    head = np.empty(n, bool)
    head[0] = True
    np.not_equal(fid[order][1:], fid[order][:-1], out=head[1:])
    starts = np.flatnonzero(head)
    customer = np.empty(n, np.int64)  # a line's customer, numbered in fusebill_id order
    customer[order] = np.cumsum(head) - 1
    pos = np.arange(n, dtype=np.int64)

    def last(mask: np.ndarray) -> np.ndarray:
        """Per customer, the position of its latest line in ``mask`` (-1: none)."""
        return np.maximum.reduceat(np.where(mask, pos, _NONE)[order], starts)

    def first(mask: np.ndarray) -> np.ndarray:
        got = np.minimum.reduceat(np.where(mask, pos, n)[order], starts)
        return np.where(got == n, _NONE, got)

    # One geotabId among the customer's lines other than undo's: no two of them differ.
    kept = order[other[order]]
    geotabs = lines["geotab_id"].take(pa.array(kept))
    differs = ~_bools(pc.equal(geotabs[1:], geotabs[:-1]))
    same_customer = customer[kept][1:] == customer[kept][:-1]
    several = np.zeros(len(starts), bool)
    several[customer[kept][1:][differs & same_customer]] = True

    sent_outcome = last(other & ~writing & sends)
    latest = np.where(sent_outcome != _NONE, sent_outcome, last(other & ~writing))
    intent = last(writing)
    open_ = (intent != _NONE) & (intent >= last(settles))  # no line after it settles it
    undone = np.logical_or.reduceat((undo & success)[order], starts)
    plain = (last(other) != _NONE) & ~several & ~undone & ~open_ & (last(other & success) != _NONE)
    wrote_last = last(sends & success & (writes | undo))
    wrote_first = first(sends & success & writes)
    closed = ~open_ & (wrote_last != _NONE)

    at = latest[plain]
    rows = lines["row"].take(pa.array(at))
    rows = pc.coalesce(rows, lines["row"].take(pa.array(last(other)[plain])))
    pairs = list(
        zip(
            fid[at].tolist(),
            lines["geotab_id"].take(pa.array(at)).to_pylist(),
            _coded(status.take(pa.array(at)), PAIR_WORDS),
            _ints(lines["command"])[at].tolist(),
            rows.to_pylist(),
            lines["error_key"].take(pa.array(at)).to_pylist(),
        )
    )
    holds = wrote_last[closed]
    befores = wrote_first[closed]
    previous = lines["previous"].take(pa.array(np.where(befores == _NONE, 0, befores)))
    before = [p if b != _NONE and p else None for p, b in zip(previous.to_pylist(), befores)]
    first_change = change.take(pa.array(np.where(befores == _NONE, 0, befores))).to_pylist()
    blind = [1 if b != _NONE and c == "unknown" else None for c, b in zip(first_change, befores)]
    restored = undo[holds]
    customers = list(
        zip(
            fid[holds].tolist(),
            before,
            _ints(lines["seq"])[holds].tolist(),
            np.where(
                restored, STATE_WORDS.index("restored"), STATE_WORDS.index("latched")
            ).tolist(),
            blind,
        )
    )
    ids = fid[order][starts]
    return State(pairs, customers, ids[~plain].tolist(), ids[open_].tolist())


def _coded(words: pa.ChunkedArray, known: tuple[str, ...]) -> list[object]:
    """Words as ``pair_state`` keeps them: a known word by its number, another as itself."""
    codes = pc.index_in(words, value_set=pa.array(known))
    if codes.null_count == 0:
        return list(codes.to_numpy().tolist())
    return [w if c is None else c for w, c in zip(words.to_pylist(), codes.to_pylist())]


def _ints(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(column, 0).to_numpy(), np.int64)


def _bools(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(column, False).to_numpy(zero_copy_only=False), bool)


def _is(column: pa.ChunkedArray | pa.Array, word: str) -> np.ndarray:
    return _bools(pc.equal(column, word))
