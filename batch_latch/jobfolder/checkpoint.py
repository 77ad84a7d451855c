"""What earlier runs achieved, keyed by the (fusebillId, geotabId) pair, durable row by row.

An append-only CSV journal (``checkpoint.csv`` in ``--out``) rather than SQLite: appending a
line is O(1) whatever the file's size, a line is flushed and fsynced before its row counts
as done, a crash can tear at most the last line (cut off when the file is next opened),
ops can read it with any text tool, and Arrow's multi-threaded reader takes a million
lines in a fraction of a second. Workers that finish together share one fsync (group
commit). Line breaks never occur inside a record: geotabIds cannot hold control
characters and messages are folded onto one line.

The first line names the API the outcomes were sent to, so a sandbox rehearsal in the same
folder is never taken for real latches.

Besides each row's outcome, a record keeps the ``change`` it made and ``previous``: what the
customer held before this job first changed it, so ``undo`` can put it back. The file owns
its schema (``earlier.py``, its companion, reads the records to say what earlier runs
settled and what undo must restore).
"""

from __future__ import annotations

import csv
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch_latch.clock import file_stamp, utc_now
from batch_latch.errors import CheckpointError, why

FILENAME = "checkpoint.csv"
_MARK = "#batch-latch-checkpoint"
#: 3: write-ahead records (status ``writing``) may stand before an outcome; 2 had none.
FORMAT = 3
#: The status of a write-ahead record: the customer, what the read showed it held
#: (``previous``) and what is being written, durable before the request leaves.
WRITING = "writing"
_V1_NAMES = ["f", "g", "s", "h", "m", "k", "t"]
_SCHEMA = pa.schema(
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


@dataclass(frozen=True)
class Records:
    """Every record of the job, in the order written, as columns: the one place the file's
    one-letter column names are spelled (the lookups in ``earlier`` use these names)."""

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
        """What the customer held before the job first changed it."""
        return self.table["p"]

    @property
    def finished_at(self) -> pa.ChunkedArray:
        return self.table["t"]


@dataclass(frozen=True)
class Record:
    fusebill_id: int
    geotab_id: str
    status: str
    http_status: int | None
    message: str
    error_key: str
    finished_at: str
    change: str = ""
    previous: str = ""  # what the customer held before the job first changed it

    def fields(self) -> list[object]:
        return [
            self.fusebill_id,
            self.geotab_id,
            self.status,
            "" if self.http_status is None else self.http_status,
            " ".join(self.message.split()),
            self.error_key,
            self.change,
            self.previous,
            self.finished_at,
        ]

    def line(self) -> bytes:
        return _csv_lines([self])


def _csv_lines(records: list[Record]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(r.fields() for r in records)
    return out.getvalue().encode("utf-8")


class JournalWriteError(CheckpointError):
    """Recording an outcome failed mid-run (disk full...): some requests were already sent."""

    exit_code = 3


class Checkpoint:
    """Single writer; ``record`` returns only once the line is on disk."""

    def __init__(self, path: Path, handle: io.BufferedWriter, earlier: pa.Table) -> None:
        self.path = path
        self.records = Records(earlier)  # every record, in the order written
        self._handle = handle
        self._cond = threading.Condition()
        self._queue: list[bytes] = []
        self._queued = 0  # sequence number of the last line queued
        self._durable = 0  # sequence number of the last line synced
        self._writing = False
        self._failure: OSError | None = None

    @classmethod
    def open(cls, out_dir: Path, base_url: str, *, fresh: bool = False) -> Checkpoint:
        path = out_dir / FILENAME
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            if fresh and path.exists():
                stamp = file_stamp(utc_now())
                path.replace(path.with_name(f"checkpoint-{stamp}.csv.old"))
            if path.exists() and path.stat().st_size == 0:
                raise CheckpointError(
                    f"checkpoint {path} is empty (0 bytes): what this job latched, and what undo "
                    "would put back, is gone; restore it from a backup, or move it away or use "
                    "--fresh (earlier successes would then be sent again)"
                )
            earlier: pa.Table | None = None
            if path.exists():
                _repair_torn_tail(path)
                version, earlier = _bind(path, base_url)
            if earlier is None:
                handle = _start(path, base_url)
                earlier = _SCHEMA.empty_table()
            else:
                if version == 2:  # the same lines: only the header's format number moves on
                    _renumber(path, base_url)
                elif version != FORMAT:
                    _rewrite(path, base_url, earlier)
                handle = path.open("ab")
        except OSError as exc:
            where = exc.filename or path
            raise CheckpointError(f"cannot use checkpoint {where}: {why(exc)}") from None
        return cls(path, handle, earlier)

    def record(self, record: Record) -> None:
        """Append and fsync; callers that arrive while a sync runs share the next one."""
        with self._cond:
            self._queue.append(record.line())
            self._queued += 1
            mine = self._queued
            while self._durable < mine:
                if self._failure is not None:
                    why = self._failure.strerror or "I/O error"
                    raise JournalWriteError(
                        f"cannot write checkpoint {self.path} ({why}): the run stopped; "
                        "outcomes recorded so far are kept; free the disk, then run the same "
                        "command again"
                    )
                if self._writing:
                    self._cond.wait()
                    continue
                batch, upto = self._queue, self._queued
                self._queue, self._writing = [], True
                self._cond.release()
                try:
                    self._handle.write(b"".join(batch))
                    _sync(self._handle)
                except OSError as exc:
                    self._failure = exc
                finally:
                    self._cond.acquire()
                    self._writing = False
                    if self._failure is None:
                        self._durable = upto
                    self._cond.notify_all()

    def record_many(self, records: list[Record]) -> None:
        """Bulk append with one fsync (benchmarks and imports)."""
        with self._cond:
            self._handle.write(_csv_lines(records))
            _sync(self._handle)

    def close(self) -> None:
        """Close the file. After a failed write (disk full...) its buffer cannot be flushed
        either: that is the write error again, said with what to do about it."""
        with self._cond:
            try:
                self._handle.close()
            except OSError as exc:
                self._failure = self._failure or exc
            if self._failure is not None:
                raise JournalWriteError(
                    f"cannot write checkpoint {self.path}: {why(self._failure)}; the run "
                    "stopped and every outcome recorded so far is kept (the same command goes "
                    "on where it stopped)"
                )


def _header_line(base_url: str) -> bytes:
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([_MARK, FORMAT, base_url])
    return header.getvalue().encode("utf-8")


def _start(path: Path, base_url: str) -> io.BufferedWriter:
    """A new journal: its header is written beside it and renamed into place, so a crash
    (or a full disk) never leaves an empty checkpoint, which is refused as damaged."""
    tmp = path.with_name(f".{path.name}.new")
    try:
        with tmp.open("wb") as handle:
            handle.write(_header_line(base_url))
            _sync(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.open("ab")


def _rewrite(path: Path, base_url: str, table: pa.Table) -> None:
    """An older journal, upgraded in place (atomically) to this format."""
    tmp = path.with_name(f".{path.name}.upgrade")
    with tmp.open("wb") as handle:
        handle.write(_header_line(base_url))
        body = io.BytesIO()
        pacsv.write_csv(
            table,
            body,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        handle.write(body.getvalue())
        _sync(handle)
    os.replace(tmp, path)


def _renumber(path: Path, base_url: str) -> None:
    """A format-2 journal becomes format 3 in place: its header line keeps its length."""
    line = _header_line(base_url)
    with path.open("rb+") as handle:
        if handle.readline() != line.replace(b",3,", b",2,", 1):
            raise CheckpointError(f"{path} has an unexpected header; move it away or use --fresh")
        handle.seek(0)
        handle.write(line)
        _sync(handle)  # type: ignore[arg-type]


def _sync(handle: io.BufferedWriter) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _repair_torn_tail(path: Path) -> None:
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
        _sync(handle)  # type: ignore[arg-type]


def made_for(out_dir: Path) -> str | None:
    """The API base URL the checkpoint in ``out_dir`` was made against (None: unreadable)."""
    try:
        with (out_dir / FILENAME).open("rb") as handle:
            first = handle.readline().decode("utf-8", errors="replace")
    except OSError:
        return None
    fields = next(csv.reader([first]), [])
    return fields[2] if len(fields) == 3 and fields[0] == _MARK else None


def _header(path: Path) -> tuple[int, str]:
    """(format, the API base URL) of a checkpoint's first line."""
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    fields = next(csv.reader([first]), [])
    if len(fields) == 3 and fields[0] == _MARK and fields[1] in ("1", "2", str(FORMAT)):
        return int(fields[1]), fields[2]
    raise CheckpointError(
        f"{path} is not a batch-latch checkpoint; move it away or use --fresh"
    ) from None


def _mismatch(path: Path, made_for: str, base_url: str) -> CheckpointError:
    return CheckpointError(
        f"the job in {path.parent} is bound to {made_for} (its checkpoint holds answers from "
        f"that API), not {base_url}: check FUSEBILL_BASE_URL, or use another --out for "
        f"{base_url}"
    )


def _bind(path: Path, base_url: str) -> tuple[int, pa.Table | None]:
    """(format, records) of an existing checkpoint for ``base_url``. A job is bound to its
    API only once an answer came from it: a checkpoint of another URL that holds no outcome
    (only its header, or only write-ahead records of writes nobody answered) is not bound,
    so it is set aside (records: None, a new one is started) instead of refused."""
    version, made_for = _header(path)
    if made_for == base_url:
        return version, _read(path, version)
    table = _read(path, version)
    if pc.any(pc.not_equal(table["s"].cast(pa.string()), WRITING)).as_py():
        raise _mismatch(path, made_for, base_url)
    if table.num_rows:  # kept for undo under its own URL, should a write have landed there
        path.replace(path.with_name(f"checkpoint-{file_stamp(utc_now())}.csv.old"))
    else:
        path.unlink()
    return FORMAT, None


def _read(path: Path, version: int = FORMAT, data: bytes | None = None) -> pa.Table:
    """Every record, in the order written (the latest for a customer wins); ``data``: the
    file's bytes, when already read."""
    names = _V1_NAMES if version == 1 else _SCHEMA.names
    try:
        table = pacsv.read_csv(
            str(path) if data is None else pa.BufferReader(data),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _READ_TYPES.get(n, _SCHEMA.field(n).type) for n in names},
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
    return table.select(_SCHEMA.names)


def read_records(path: Path, base_url: str | None = None) -> tuple[str, Records]:
    """(the API it was made against, its records) of a checkpoint file, read only (no lock,
    no upgrade; a line a running command is still appending is left out). With
    ``base_url``, a checkpoint of another API is refused (``CheckpointError``)."""
    version, made_against = _header(path)
    if base_url is not None and made_against != base_url:
        raise _mismatch(path, made_against, base_url)
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    return made_against, Records(_read(path, version, data))


def no_records() -> Records:
    return Records(_SCHEMA.empty_table())
