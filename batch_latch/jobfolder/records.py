"""The job's lines as columns, for the lookups over earlier commands (``rerun_rules``).

Loaded from the ledger (``job.db``) in the order written; one Arrow column per field, text
columns dictionary-coded (statuses and messages repeat a million times).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCHEMA = pa.schema(
    [
        ("f", pa.int64()),  # fusebillId
        ("g", pa.string()),  # geotabId
        ("s", pa.string()),  # status (or 'writing')
        ("h", pa.int64()),  # http_status
        ("m", pa.string()),  # message
        ("k", pa.string()),  # error_key
        ("c", pa.string()),  # change
        ("p", pa.string()),  # previous: what it held before the job's first change
        ("t", pa.string()),  # finished_at
        ("x", pa.bool_()),  # settles: Fusebill's answer showed what the customer holds
    ]
)


@dataclass(frozen=True)
class Records:
    """Every line of the job that counts for its re-run rules and undo, in order."""

    table: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def fusebill_id(self) -> np.ndarray:
        return np.asarray(self.table["f"].to_numpy(), dtype=np.int64)

    @property
    def geotab_id(self) -> pa.ChunkedArray:
        return self.table["g"]

    @property
    def status(self) -> pa.ChunkedArray:
        return self.table["s"]

    @property
    def http_status(self) -> pa.ChunkedArray:
        return self.table["h"]

    @property
    def message(self) -> pa.ChunkedArray:
        return self.table["m"]

    @property
    def error_key(self) -> pa.ChunkedArray:
        return self.table["k"]

    @property
    def change(self) -> pa.ChunkedArray:
        return self.table["c"]

    @property
    def previous(self) -> pa.ChunkedArray:
        return self.table["p"]

    @property
    def finished_at(self) -> pa.ChunkedArray:
        return self.table["t"]

    @property
    def settles(self) -> np.ndarray:
        return np.asarray(self.table["x"].to_numpy(zero_copy_only=False), dtype=bool)

    def since(self, start: int) -> Records:
        """The lines from position ``start`` on (a ``--fresh`` start forgets the rest)."""
        return Records(self.table.slice(start))


def no_records() -> Records:
    return Records(SCHEMA.empty_table())


def from_rows(rows: list[tuple[object, ...]]) -> Records:
    """Records from ledger rows in SCHEMA's order, ``settles`` as SQLite keeps it (0 or 1);
    text columns dictionary-coded; columns after SCHEMA's are left out."""
    if not rows:
        return no_records()
    columns = list(zip(*rows))
    arrays = []
    for field, values in zip(SCHEMA, columns):
        if field.type == pa.bool_():
            array = pa.array(values, pa.int64()).cast(pa.bool_())
        else:
            array = pa.array(values, field.type)
        if field.type == pa.string():
            array = array.dictionary_encode()
        arrays.append(array)
    return Records(pa.Table.from_arrays(arrays, names=SCHEMA.names))


def as_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy (null: False)."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)
