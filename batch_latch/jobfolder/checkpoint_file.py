"""The checkpoint's file: its first line (format and API), its columns, and the safe ways
to start, upgrade, repair and read it. ``checkpoint.py`` holds the journal that appends to
it and the policy around it (binding a job to its API, ``--fresh``).
"""

from __future__ import annotations

import csv
import io
import os
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
#: The status of a write-ahead record: the customer, what the read showed it held
#: (``previous``) and what is being written, durable before the request leaves.
WRITING = "writing"
#: What a write-ahead record says, shown when it is read back; not stored in each record
#: (70 bytes a row: a run's checkpoint is 118 bytes a row with it left out, 188 with it).
WRITING_NOTE = "sent; its answer was not recorded (the command stopped before it came)"


def said(status: str | None, message: str | None) -> str:
    """A record's message as shown: a write-ahead record's is :data:`WRITING_NOTE`."""
    return message or (WRITING_NOTE if status == WRITING else "")


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


def header_line(base_url: str) -> bytes:
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([_MARK, FORMAT, base_url])
    return header.getvalue().encode("utf-8")


def start(path: Path, base_url: str) -> io.BufferedWriter:
    """A new journal: its header is written beside it and renamed into place, so a crash
    (or a full disk) never leaves an empty checkpoint, which is refused as damaged."""
    tmp = path.with_name(f".{path.name}.new")
    try:
        with tmp.open("wb") as handle:
            handle.write(header_line(base_url))
            sync(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.open("ab")


def rewrite(path: Path, base_url: str, table: pa.Table) -> None:
    """An older journal, upgraded in place (atomically) to this format."""
    tmp = path.with_name(f".{path.name}.upgrade")
    with tmp.open("wb") as handle:
        handle.write(header_line(base_url))
        body = io.BytesIO()
        pacsv.write_csv(
            table,
            body,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        handle.write(body.getvalue())
        sync(handle)
    os.replace(tmp, path)


def renumber(path: Path, base_url: str) -> None:
    """A format-2 journal becomes format 3 in place: its header line keeps its length."""
    line = header_line(base_url)
    with path.open("rb+") as handle:
        if handle.readline() != line.replace(b",3,", b",2,", 1):
            raise CheckpointError(f"{path} has an unexpected header; move it away or use --fresh")
        handle.seek(0)
        handle.write(line)
        sync(handle)  # type: ignore[arg-type]


def sync(handle: io.BufferedWriter) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def repair_torn_tail(path: Path) -> None:
    """A crash mid-append can leave a last line without its newline: cut it off."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return
        step, end = 1 << 16, size
        while end > 0:
            start = max(0, end - step)
            handle.seek(start)
            chunk = handle.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                break
            end = start
        else:
            handle.truncate(0)
        sync(handle)  # type: ignore[arg-type]


def made_for(out_dir: Path) -> str | None:
    """The API base URL the checkpoint in ``out_dir`` was made against (None: unreadable)."""
    try:
        with (out_dir / FILENAME).open("rb") as handle:
            first = handle.readline().decode("utf-8", errors="replace")
    except OSError:
        return None
    fields = next(csv.reader([first]), [])
    return fields[2] if len(fields) == 3 and fields[0] == _MARK else None


def header(path: Path) -> tuple[int, str]:
    """(format, the API base URL) of a checkpoint's first line."""
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    fields = next(csv.reader([first]), [])
    if len(fields) == 3 and fields[0] == _MARK and fields[1] in ("1", "2", str(FORMAT)):
        return int(fields[1]), fields[2]
    raise CheckpointError(
        f"{path} is not a batch-latch checkpoint; move it away or use --fresh"
    ) from None


def read_table(path: Path, version: int = FORMAT, data: bytes | None = None) -> pa.Table:
    """Every record, in the order written (the latest for a customer wins); ``data``: the
    file's bytes, when already read."""
    names = _V1_NAMES if version == 1 else SCHEMA.names
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
            "move it away or use --fresh (earlier successes would then be sent again)"
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
