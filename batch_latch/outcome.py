"""A row's outcome and the report's columns built from them, one entry per non-blank
input row, in input order. The engine (``send/``) makes them and ``reports/`` writes them,
so they live on the floor below both.

Text columns are kept as dictionary codes, so a value repeated a million times (the same
status or message) costs a million small integers, not a million strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.sheet.validate import Verdicts
from batch_latch.vocab import Change, ErrorKey, RowKey, Status, StopReason


@dataclass(frozen=True)
class Settled:
    """For the rows asked about: which ones earlier runs settled, and what they recorded."""

    where: np.ndarray  # positions in the asked arrays
    status: pa.Array  # string, like the columns below
    http_status: pa.Array  # int64, nullable
    message: pa.Array
    error_key: pa.Array
    change: pa.Array
    previous: pa.Array
    finished_at: pa.Array
    notes: dict[int, str]  # position -> what an earlier run said of a pair it did not settle


@dataclass(frozen=True)
class RowOutcome:
    """How one row ended in a live command: what the reports and the ledger take."""

    status: Status
    http_status: int | None
    attempts: int  # latch requests sent for the row in this run
    message: str
    error_key: RowKey = ErrorKey.NONE
    change: Change = Change.NONE
    previous: str = ""
    finished_at: str = ""
    held: str | None = None  # what the read found: "" none; None not read, or not shown
    #: Fusebill's answer settled what the customer holds: a read showed it, or the answer
    #: to the write proved it landed or was refused. An earlier write left open (its answer
    #: lost) stays possibly landed until such an outcome.
    settles: bool = False


@dataclass(frozen=True)
class ResultColumns:
    """The tool's own columns of the reports (see ``vocab.TOOL_COLUMNS``)."""

    row: pa.Array  # int64
    fusebillId: pa.Array
    geotabId: pa.Array
    status: pa.Array  # string
    http_status: pa.Array  # int64, null when nothing was answered
    attempts: pa.Array  # int64
    message: pa.Array  # string
    error_key: pa.Array  # string
    change: pa.Array  # string
    previous_geotabId: pa.Array  # string
    finished_at: pa.Array  # string (ISO 8601 UTC) or ""

    def items(self) -> list[tuple[str, pa.Array]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class LiveOutcome:
    """What a command produced for its reports: the columns, and what it cost (a dry run
    costs nothing)."""

    columns: ResultColumns
    requests: int = 0
    reads: int = 0
    writes: int = 0
    requests_by_day: dict[str, int] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    stop_message: str = ""
    limits: tuple[int | None, int | None] = (None, None)
    customers_read: int = 0  # customers a trusted list answer showed, and one-by-one reads
    held: pa.Array | None = None  # a plan: per row, what its read found (for run --plan)
    #: The sheet's own columns for these rows, when the command's rows are not its input's
    #: (undo: the columns of the latch each customer's undo puts back).
    extras: dict[str, pa.Array] = field(default_factory=dict)
    #: The first few tracebacks of rows a bug failed (redacted), kept beside the reports.
    row_errors: tuple[str, ...] = ()


class TextColumn:
    def __init__(self, base: pa.Array | str, n: int) -> None:
        if isinstance(base, str):
            self._parts, self.codes = [pa.array([base], pa.string())], np.zeros(n, np.int32)
        else:
            encoded = base if pa.types.is_dictionary(base.type) else pc.dictionary_encode(base)
            self._parts = [encoded.dictionary.cast(pa.string())]
            self.codes = np.array(encoded.indices.to_numpy(zero_copy_only=False), np.int32)
        self._size = len(self._parts[0])

    def put(self, positions: np.ndarray, values: pa.Array | str) -> None:
        if not len(positions):
            return
        if isinstance(values, str):
            values = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(positions), np.int32)), pa.array([values], pa.string())
            )
        encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
        indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32)
        self.codes[positions] = indices + self._size
        self._parts.append(encoded.dictionary.cast(pa.string()))
        self._size += len(encoded.dictionary)

    def array(self) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(self.codes), pa.concat_arrays(self._parts))


class IntColumn:
    def __init__(self, n: int, *, nullable: bool) -> None:
        self.values = np.zeros(n, np.int64)
        self.missing = np.ones(n, bool) if nullable else None

    def put(self, positions: np.ndarray, values: pa.Array) -> None:
        if not len(positions):
            return
        self.values[positions] = np.asarray(pc.fill_null(values, 0).to_numpy(), np.int64)
        if self.missing is not None:
            known = values.is_valid().to_numpy(zero_copy_only=False)
            self.missing[positions] = ~np.asarray(known, dtype=bool)

    def array(self) -> pa.Array:
        return pa.array(self.values, mask=self.missing)


class Builder:
    """Starts from the validator's verdicts; earlier runs and this run's outcomes overlay it."""

    def __init__(self, verdicts: Verdicts) -> None:
        n = len(verdicts)
        self.verdicts = verdicts
        self.status = TextColumn(verdicts.status, n)
        self.message = TextColumn(verdicts.message, n)
        self.error_key = TextColumn(verdicts.error_key, n)
        self.change = TextColumn("", n)
        self.previous = TextColumn("", n)
        self.finished = TextColumn("", n)
        self.http = IntColumn(n, nullable=True)
        self.attempts = IntColumn(n, nullable=False)

    def settled(self, earlier: Settled) -> None:
        at = earlier.where
        self.status.put(at, earlier.status)
        self.message.put(at, earlier.message)
        self.error_key.put(at, earlier.error_key)
        self.change.put(at, earlier.change)
        self.previous.put(at, earlier.previous)
        self.finished.put(at, earlier.finished_at)
        self.http.put(at, earlier.http_status)

    def outcomes(self, positions: Sequence[int], outcomes: Sequence[RowOutcome]) -> None:
        if not positions:
            return
        at = np.asarray(positions, dtype=np.int64)

        def column(get: Callable[[RowOutcome], Any], kind: pa.DataType) -> pa.Array:
            return pa.array([get(o) for o in outcomes], type=kind)

        self.status.put(at, column(lambda o: o.status.value, pa.string()))
        self.http.put(at, column(lambda o: o.http_status, pa.int64()))
        self.attempts.put(at, column(lambda o: o.attempts, pa.int64()))
        self.message.put(at, column(lambda o: o.message, pa.string()))
        self.error_key.put(at, column(lambda o: o.error_key, pa.string()))
        self.change.put(at, column(lambda o: o.change.value, pa.string()))
        self.previous.put(at, column(lambda o: o.previous, pa.string()))
        self.finished.put(at, column(lambda o: o.finished_at, pa.string()))

    def columns(self) -> ResultColumns:
        v = self.verdicts
        return ResultColumns(
            row=v.rows,
            fusebillId=v.fusebill,
            geotabId=v.geotab,
            status=self.status.array(),
            http_status=self.http.array(),
            attempts=self.attempts.array(),
            message=self.message.array(),
            error_key=self.error_key.array(),
            change=self.change.array(),
            previous_geotabId=self.previous.array(),
            finished_at=self.finished.array(),
        )


def dry_run_columns(verdicts: Verdicts) -> ResultColumns:
    return Builder(verdicts).columns()
