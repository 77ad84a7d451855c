"""What earlier runs of this job settled, and what ``undo`` must put back: the rules, as
lookups over lines of the ledger, on whole columns. Each rule is about one customer at a
time, so ``state_reads.KeptState`` hands them only the lines an answer depends on.

A customer's latest record wins: a pair is settled only while it is the latest thing this
job recorded for that customer (if the job later latched the customer to another geotabId,
or undid it, the pair is a row like any other again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.jobfolder.ledger import WRITING, said
from batch_latch.jobfolder.records import Records, as_mask
from batch_latch.outcome import Settled
from batch_latch.vocab import Change, Status

#: Changes that wrote to the customer (``unchanged`` wrote nothing).
WRITES = (Change.NEW.value, Change.RELATCH.value, Change.UNKNOWN.value)
#: error_key of a 4xx that is Fusebill's final word (not 408, 409 or 429).
REFUSAL_PATTERN = r"^http_4(?:0[0-7]|1\d|2[0-8]|[3-9]\d)$"
EARLIER_SUCCESS = "latched earlier; not sent again"
_WRITES = pa.array(WRITES)


def is_refusal(error_key: str) -> bool:
    """A 4xx Fusebill gave as its final word (not 408/409/429, which are worth a retry)."""
    return re.match(REFUSAL_PATTERN, error_key) is not None  # the rule the lookup applies


@dataclass(frozen=True)
class Origin:
    """What a customer held before this job first changed it."""

    previous: str  # "" when it held none
    known: bool  # False when the first change was written blind (--no-read)


@dataclass(frozen=True)
class Unanswered:
    """A latch this job recorded before sending (write-ahead) whose answer it never
    recorded (kill -9, SIGTERM, a lost answer): it may have landed."""

    geotab_id: str  # what was being written
    change: Change  # new, relatch or unknown: what it would have done
    previous: str  # what the read showed the customer held before


@dataclass(frozen=True)
class Target:
    """A customer undo must look at: what the job set, and what to put back."""

    fusebill_id: int
    set_to: str
    origin: Origin


def _is(values: pa.Array | pa.ChunkedArray, value: str) -> np.ndarray:
    """Where a (dictionary-coded) column equals ``value``, as a numpy mask."""
    return as_mask(_each(_flat(values), lambda v: pc.equal(v, value)))


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


class Earlier:
    def __init__(self, records: Records) -> None:
        self._r = records
        self._fids = records.fusebill_id

    def __len__(self) -> int:
        return len(self._r)

    @staticmethod
    def _column(values: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
        return _flat(pc.take(values, pa.array(rows, pa.int64())))

    def _not_undo_failures(self) -> np.ndarray | None:
        """Positions of the records that are not an undo that restored nothing (None: all).

        An undo that left a customer alone (changed since, unknown previous, refused...) is
        not a latch: the pair the job latched before it stays the latest latch."""
        undo = _is(_flat(self._r.change), Change.UNDO.value)
        if not undo.any():
            return None
        success = _is(_flat(self._r.status), Status.SUCCESS.value)
        failed = undo & ~success
        return np.flatnonzero(~failed) if failed.any() else None

    def latest(self, fids: np.ndarray) -> np.ndarray:
        """For each asked fusebillId, the position of its latest record, or -1 (records of
        an undo that restored nothing do not count)."""
        kept = self._not_undo_failures()
        pool = self._fids if kept is None else self._fids[kept]
        order = np.argsort(pool, kind="stable")  # equal ids keep the order written
        if kept is not None:
            order = kept[order]
        if not len(order):
            return np.full(len(fids), -1, np.int64)
        ordered = self._fids[order]
        last = np.searchsorted(ordered, fids, side="right") - 1
        hit = (last >= 0) & (ordered[np.maximum(last, 0)] == fids)
        return np.where(hit, order[np.maximum(last, 0)], -1)

    def settled(
        self, fids: np.ndarray, gids: pa.Array, *, retry_not_found: bool, retry_failed: bool
    ) -> Settled:
        latest = self.latest(fids) if len(self) else np.full(len(fids), -1, np.int64)
        found = np.flatnonzero(latest >= 0)
        rows = latest[found]
        same = as_mask(
            pc.equal(pc.take(gids, pa.array(found)), self._column(self._r.geotab_id, rows))
        )
        found, rows = found[same], rows[same]
        status, key = self._column(self._r.status, rows), self._column(self._r.error_key, rows)
        change, message = self._column(self._r.change, rows), self._column(self._r.message, rows)
        success = _is(status, Status.SUCCESS.value) & ~as_mask(
            _each(change, lambda v: pc.equal(v, Change.UNDO.value))
        )
        missing = _is(status, Status.NOT_FOUND.value)
        refused = _is(status, Status.FAILED.value) & as_mask(
            _each(key, lambda v: pc.match_substring_regex(v, REFUSAL_PATTERN))
        )
        missing &= not retry_not_found
        refused &= not retry_failed
        keep = success | missing | refused
        at = np.flatnonzero(keep)
        rest = np.flatnonzero(~keep)
        notes = dict(
            zip(
                found[rest].tolist(),
                (
                    f"{s}: {m}" if m else str(s)
                    for s, m in zip(
                        _take(status, rest).to_pylist(),
                        map(
                            said, _take(status, rest).to_pylist(), _take(message, rest).to_pylist()
                        ),
                    )
                ),
            )
        )
        if success.all():  # the usual re-run: every settled row latched earlier
            texts: pa.Array = _constant(EARLIER_SUCCESS, len(at))
            keys: pa.Array = _constant("latched_earlier", len(at))
        else:
            words = _take(message, at).to_pylist()
            for j, (ok, nf) in enumerate(zip(success[at].tolist(), missing[at].tolist())):
                words[j] = EARLIER_SUCCESS if ok else _earlier_words(nf, words[j])
            texts = pa.array(words, pa.string())
            keys = pc.if_else(pa.array(success[at]), "latched_earlier", _text(_take(key, at)))
        sub = rows[at]
        return Settled(
            where=found[at],
            status=_take(status, at),
            http_status=self._column(self._r.http_status, sub),
            message=texts,
            error_key=keys,
            change=_take(change, at),
            previous=self._column(self._r.previous, sub),
            finished_at=self._column(self._r.finished_at, sub),
            notes=notes,
        )

    def origins(self, fids: Iterable[int]) -> dict[int, Origin]:
        """For the customers asked about, what they held before the job's first write."""
        wanted = np.fromiter(fids, dtype=np.int64)
        if not len(self) or not len(wanted):
            return {}
        rows = np.flatnonzero(np.isin(self._fids, wanted))
        out: dict[int, Origin] = {}
        for fid, s, c, p in zip(
            self._fids[rows].tolist(),
            self._column(self._r.status, rows).to_pylist(),
            self._column(self._r.change, rows).to_pylist(),
            self._column(self._r.previous, rows).to_pylist(),
        ):
            if fid not in out and s == Status.SUCCESS.value and c in WRITES:
                out[fid] = Origin(previous=p, known=c != Change.UNKNOWN.value)
        return out

    def _unanswered_mask(self) -> np.ndarray:
        """The write-ahead records of latches still open: no later line of their customer
        settles them (an answer that proved the write, or a read that showed what the
        customer holds). A row that ended ``failed`` or ``pending`` after its answer was
        lost leaves its write open: it may have landed."""
        writing = _is(self._r.status, WRITING)
        if not writing.any():
            return writing
        latch = as_mask(_each(_flat(self._r.change), lambda v: pc.is_in(v, value_set=_WRITES)))
        at = np.flatnonzero(writing & latch)
        settling = np.flatnonzero(self._r.settles)
        mask = np.zeros(len(self), dtype=bool)
        if not len(settling):  # no line settled any customer (killed before any answer)
            mask[at] = True
            return mask
        order = np.argsort(self._fids[settling], kind="stable")
        fids, positions = self._fids[settling][order], settling[order]
        wanted = self._fids[at]
        last = np.searchsorted(fids, wanted, side="right") - 1
        hit = (last >= 0) & (fids[np.maximum(last, 0)] == wanted)
        settled_at = np.where(hit, positions[np.maximum(last, 0)], -1)
        mask[at[at > settled_at]] = True
        return mask

    def unanswered(self, fids: Iterable[int]) -> dict[int, Unanswered]:
        """For the customers asked about: the latest latch of this job that is still open
        (its answer was lost and no read has settled it since)."""
        rows = np.flatnonzero(self._unanswered_mask()) if len(self) else np.zeros(0, np.int64)
        if not len(rows):
            return {}
        wanted = np.fromiter(fids, dtype=np.int64)
        rows = rows[np.isin(self._fids[rows], wanted)]
        return {  # in order written: a customer's latest open write wins
            fid: Unanswered(g, Change(c), p)
            for fid, g, c, p in zip(
                self._fids[rows].tolist(),
                self._column(self._r.geotab_id, rows).to_pylist(),
                self._column(self._r.change, rows).to_pylist(),
                self._column(self._r.previous, rows).to_pylist(),
            )
        }

    def undo_targets(self) -> Targets:
        """Customers this job wrote to whose latest successful write is not yet undone."""
        if not len(self):
            return Targets.none()
        success = _is(_flat(self._r.status), Status.SUCCESS.value)
        wrote = as_mask(
            _each(
                _flat(self._r.change),
                lambda v: pc.is_in(v, value_set=pa.array([*WRITES, Change.UNDO.value])),
            )
        )
        rows = np.flatnonzero((success & wrote) | self._unanswered_mask())  # order written
        if not len(rows):
            return Targets.none()
        fids = self._fids[rows]
        order = np.argsort(fids, kind="stable")
        ordered = fids[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(ordered)] - 1
        first, last = rows[order[starts]], rows[order[ends]]  # a write always comes first
        undone = as_mask(
            _each(self._column(self._r.change, last), lambda v: pc.equal(v, Change.UNDO.value))
        )
        first, last = first[~undone], last[~undone]
        blind = as_mask(
            _each(self._column(self._r.change, first), lambda v: pc.equal(v, Change.UNKNOWN.value))
        )
        return Targets(
            fusebill_ids=self._fids[last],
            set_to=_text(self._column(self._r.geotab_id, last)),
            previous=_text(self._column(self._r.previous, first)),
            known=~blind,
        )


@dataclass(frozen=True)
class Targets:
    """Every customer undo must look at, as columns (a million of them stay cheap)."""

    fusebill_ids: np.ndarray  # int64
    set_to: pa.Array  # string: what the job set last
    previous: pa.Array  # string: what it held before the job's first change ("" = none)
    known: np.ndarray  # bool: False when the first change was written blind

    @classmethod
    def none(cls) -> Targets:
        empty = pa.array([], pa.string())
        return cls(np.zeros(0, np.int64), empty, empty, np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.fusebill_ids)

    def take(self, order: np.ndarray) -> Targets:
        """The same targets in ``order`` (positions)."""
        at = pa.array(order, pa.int64())
        return Targets(
            self.fusebill_ids[order],
            pc.take(self.set_to, at),
            pc.take(self.previous, at),
            self.known[order],
        )

    def __getitem__(self, i: int) -> Target:
        origin = Origin(str(self.previous[i].as_py()), bool(self.known[i]))
        return Target(int(self.fusebill_ids[i]), str(self.set_to[i].as_py()), origin)


def _earlier_words(not_found: bool, message: str) -> str:
    if not_found:
        return (
            f"not found in an earlier run: {message}; not sent again "
            "(use --retry-not-found to send it)"
        )
    return (
        f"refused in an earlier run: {message}; not sent again "
        "(fix the row, or use --retry-failed to send it)"
    )


def _each(values: pa.Array, kernel: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``kernel`` over a column; on a dictionary column, once per distinct value."""
    if pa.types.is_dictionary(values.type):
        return pc.take(kernel(values.dictionary), values.indices)
    return kernel(values)


def _take(values: pa.Array, at: np.ndarray) -> pa.Array:
    return pc.take(values, pa.array(at, pa.int64()))


def _text(values: pa.Array) -> pa.Array:
    return values.cast(pa.string()) if pa.types.is_dictionary(values.type) else values


def _constant(text: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([text]))
