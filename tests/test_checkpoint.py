"""The checkpoint journal: durable appends, latest record wins, torn tails, wrong files."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from batch_latch.checkpoint import FILENAME, Checkpoint, JournalWriteError, Record
from batch_latch.errors import CheckpointError

URL = "http://127.0.0.1:8765/v1"


def record(fid: int, gid: str, status: str = "success", message: str = "latched") -> Record:
    return Record(
        fid, gid, status, 200 if status == "success" else 404, message, "", "2026-01-01T00:00:00Z"
    )


def earlier(out: Path, url: str = URL) -> list[tuple[int, str, str]]:
    store = Checkpoint.open(out, url)
    try:
        table = store.earlier
        return list(zip(table["f"].to_pylist(), table["g"].to_pylist(), table["s"].to_pylist()))
    finally:
        store.close()


def test_records_survive_a_reopen_in_the_order_written(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A", "not_found"))
    store.record(record(2, 'B,"quoted", with commas'))
    store.record(record(1, "A"))  # a later run latched it after all
    store.close()

    assert earlier(tmp_path) == [
        (1, "A", "not_found"),
        (2, 'B,"quoted", with commas', "success"),
        (1, "A", "success"),
    ]


def test_a_message_with_line_breaks_stays_on_one_line(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(7, "G", "failed", message="first line\r\nsecond\tline"))
    store.close()

    lines = (tmp_path / FILENAME).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # the header line and one record
    assert "first line second line" in lines[1]


def test_a_torn_last_line_is_cut_off_and_appending_goes_on(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()
    with (tmp_path / FILENAME).open("ab") as handle:
        handle.write(b"2,B,succ")  # the crash came mid-append

    store = Checkpoint.open(tmp_path, URL)
    store.record(record(3, "C"))
    store.close()

    assert earlier(tmp_path) == [(1, "A", "success"), (3, "C", "success")]


def test_a_checkpoint_made_against_another_api_is_refused(tmp_path: Path) -> None:
    Checkpoint.open(tmp_path, URL).close()

    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(tmp_path, "https://secure.fusebill.com/v1")
    assert f"made against {URL}" in str(caught.value)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")

    with pytest.raises(CheckpointError, match="not a batch-latch checkpoint"):
        Checkpoint.open(tmp_path, URL)


def test_a_damaged_record_is_reported_not_raised_as_a_crash(tmp_path: Path) -> None:
    Checkpoint.open(tmp_path, URL).close()
    with (tmp_path / FILENAME).open("ab") as handle:
        handle.write(b"not-a-number,A,success,200,latched,,t\n")

    with pytest.raises(CheckpointError, match="damaged"):
        Checkpoint.open(tmp_path, URL)


def test_fresh_keeps_the_old_journal_aside(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()

    store = Checkpoint.open(tmp_path, URL, fresh=True)
    store.close()

    assert earlier(tmp_path) == []
    kept = list(tmp_path.glob("checkpoint-*.csv.old"))
    assert len(kept) == 1 and "1,A,success" in kept[0].read_text(encoding="utf-8")


def test_workers_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    start = threading.Barrier(8)

    def worker(base: int) -> None:
        start.wait(timeout=10)
        for i in range(50):
            store.record(record(base * 1000 + i, f"G{base}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    store.close()

    recorded = earlier(tmp_path)
    assert len(recorded) == 400
    assert {fid for fid, _, _ in recorded} == {b * 1000 + i for b in range(8) for i in range(50)}


class FullDisk:
    """A file handle whose writes fail the way a full disk does."""

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_failed_write_stops_with_exit_3_and_a_one_line_reason(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store._handle = FullDisk()  # type: ignore[assignment]

    with pytest.raises(JournalWriteError) as caught:
        store.record(record(1, "A"))

    assert caught.value.exit_code == 3
    assert "No space left on device" in str(caught.value)
    assert "\n" not in str(caught.value)
    # Every later caller hears the same, rather than waiting for ever.
    with pytest.raises(JournalWriteError):
        store.record(record(2, "B"))
