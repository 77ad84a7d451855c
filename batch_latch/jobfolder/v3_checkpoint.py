"""The v3 checkpoint file (``checkpoint.csv``), read only, to take a v3 job into
``job.db``: its first line (format and API) and its records as columns.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch_latch.errors import CheckpointError

FILENAME = "checkpoint.csv"
_MARK = "#batch-latch-checkpoint"
#: 3: write-ahead records (status ``writing``) may stand before an outcome; 2 had none.
FORMAT = 3


_V1_NAMES = ["f", "g", "s", "h", "m", "k", "t"]
SCHEMA = pa.schema(
    [
        ("f", pa.int64()),
        ("g", pa.string()),
        ("s", pa.string()),
        ("h", pa.int64()),
        ("m", pa.string()),
        ("k", pa.string()),
        ("c", pa.string()),
        ("p", pa.string()),
        ("t", pa.string()),
    ]
)  # fusebillId, geotabId, status, http_status, message, error_key, change, previous, finished_at


# Read as dictionary codes: statuses, messages and times repeat, and lookups that take a
# million rows' values then move small integers instead of strings.
_CODED = pa.dictionary(pa.int32(), pa.string())
_READ_TYPES = {name: _CODED for name in ("s", "m", "k", "c", "p", "t")}


def header(path: Path) -> tuple[int, str]:
    """(format, the API base URL) of a checkpoint's first line."""
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    fields = next(csv.reader([first]), [])
    if len(fields) == 3 and fields[0] == _MARK and fields[1] in ("1", "2", str(FORMAT)):
        return int(fields[1]), fields[2]
    raise CheckpointError(f"{path} is not a batch-latch checkpoint; move it away") from None


def read_table(path: Path, version: int = FORMAT, data: bytes | None = None) -> pa.Table:
    """Every record, in the order written (the latest for a customer wins); ``data``: the
    file's bytes, when already read."""
    names = _V1_NAMES if version == 1 else SCHEMA.names
    if data is None and _torn(path):  # v3 cut it off when it next opened the file
        data = path.read_bytes()
    if data is not None and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    try:
        table = pacsv.read_csv(
            str(path) if data is None else pa.BufferReader(data),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _READ_TYPES.get(n, SCHEMA.field(n).type) for n in names},
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is damaged ({str(exc).splitlines()[0][:100]}); "
            "move it away (earlier successes would then be sent again)"
        ) from None
    table = table.filter(pc.is_valid(table["f"]))
    if version == 1:  # v1 wrote blind: what a success changed is unknown
        n = table.num_rows
        change = pc.if_else(pc.equal(table["s"], "success"), "unknown", "")
        table = table.add_column(6, "c", pc.dictionary_encode(change))
        table = table.add_column(
            7, "p", pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([""]))
        )
    return table.select(SCHEMA.names)


def _torn(path: Path) -> bool:
    """A crash mid-append left the last line without its newline."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 1))
            return size > 0 and handle.read(1) != b"\n"
    except OSError:
        return False
