"""The checkpoint journal: durable appends, records in the order written, torn tails, wrong
files, format 2 (change and previous) and the upgrade of a v1 journal."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from batch_latch.errors import CheckpointError
from batch_latch.jobfolder.checkpoint import (
    FILENAME,
    WRITING,
    Checkpoint,
    JournalWriteError,
    Record,
    made_for,
)
from batch_latch.jobfolder.memory import remembered, set_aside
from tests.doubles import FullDisk

URL = "http://127.0.0.1:8765/v1"


def record(fid: int, gid: str, status: str = "success", message: str = "latched") -> Record:
    return Record(
        fid, gid, status, 200 if status == "success" else 404, message, "", "2026-01-01T00:00:00Z"
    )


def earlier(out: Path, url: str = URL) -> list[tuple[int, str, str]]:
    store = Checkpoint.open(out, url)
    try:
        table = store.records.table
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


def test_a_checkpoint_holding_answers_from_another_api_is_refused(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()

    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(tmp_path, "https://secure.fusebill.com/v1")
    text = str(caught.value)
    assert f"bound to {URL}" in text and "https://secure.fusebill.com/v1" in text
    assert "--out" in text and "--fresh" not in text


def test_a_checkpoint_no_answer_came_to_is_not_bound(tmp_path: Path) -> None:
    Checkpoint.open(tmp_path, "http://127.0.0.1:8765").close()  # a wrong URL: nothing answered

    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()

    assert made_for(tmp_path) == URL
    assert earlier(tmp_path) == [(1, "A", "success")]
    assert set_aside(tmp_path) == []


def test_unanswered_writes_to_an_unbound_url_are_set_aside_not_lost(tmp_path: Path) -> None:
    wrong = "http://127.0.0.1:8765"
    store = Checkpoint.open(tmp_path, wrong)
    store.record(Record(1, "A", WRITING, None, "", "", "", "new", ""))
    store.close()

    Checkpoint.open(tmp_path, URL).close()

    assert len(set_aside(tmp_path)) == 1
    assert len(remembered(tmp_path, wrong)) == 1  # under its own URL
    assert len(remembered(tmp_path, URL)) == 0


def test_fresh_sets_the_checkpoint_aside_and_the_job_remembers_it(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()

    store = Checkpoint.open(tmp_path, URL, fresh=True)
    store.record(record(2, "B"))
    store.close()
    store = Checkpoint.open(tmp_path, URL)
    store.close()

    assert len(set_aside(tmp_path)) == 1
    both = remembered(tmp_path, URL, store.records)
    assert both.fusebill_id.tolist() == [1, 2]
    assert len(remembered(tmp_path, "https://secure.fusebill.com/v1")) == 0


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


def test_a_failed_write_stops_with_exit_3_and_a_one_line_reason(tmp_path: Path) -> None:
    opened = Checkpoint.open(tmp_path, URL)
    opened.close()
    store = Checkpoint(tmp_path / FILENAME, FullDisk(), opened.records.table)

    with pytest.raises(JournalWriteError) as caught:
        store.record(record(1, "A"))

    assert caught.value.exit_code == 3
    assert "No space left on device" in str(caught.value)
    assert "\n" not in str(caught.value)
    # Every later caller hears the same, rather than waiting for ever.
    with pytest.raises(JournalWriteError):
        store.record(record(2, "B"))
    # Closing it (the runner's ``finally``) says it again, with what to do: not an OSError.
    with pytest.raises(JournalWriteError, match="free some space and run again") as closed:
        store.close()
    assert closed.value.exit_code == 3


def test_an_empty_checkpoint_is_refused_like_a_damaged_one(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(record(1, "A"))
    store.close()
    (tmp_path / FILENAME).write_bytes(b"")

    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)") as caught:
        Checkpoint.open(tmp_path, URL)
    assert caught.value.exit_code == 2
    assert (tmp_path / FILENAME).read_bytes() == b""  # left as it was, for a backup's restore
    Checkpoint.open(tmp_path, URL, fresh=True).close()  # --fresh starts over


# --- format 2, and the v1 upgrade -------------------------------------------------------------


def test_format_2_keeps_change_and_previous(tmp_path: Path) -> None:
    store = Checkpoint.open(tmp_path, URL)
    store.record(
        Record(1, "A", "success", 200, "latched", "", "2026-01-01T00:00:00Z", "relatch", "OLD")
    )
    store.record(Record(2, "B", "failed", 400, "no", "http_400", "2026-01-01T00:00:01Z"))
    store.close()

    first = (tmp_path / FILENAME).read_text(encoding="utf-8").splitlines()[0]
    assert first == f"#batch-latch-checkpoint,3,{URL}"
    store = Checkpoint.open(tmp_path, URL)
    store.close()
    table = store.records.table
    assert table.column_names == ["f", "g", "s", "h", "m", "k", "c", "p", "t"]
    assert table["c"].to_pylist() == ["relatch", ""]
    assert table["p"].to_pylist() == ["OLD", ""]
    assert table["h"].to_pylist() == [200, 400]
    assert table["k"].to_pylist() == ["", "http_400"]


def test_a_v1_checkpoint_is_upgraded_and_its_successes_read_as_change_unknown(
    tmp_path: Path,
) -> None:
    v1 = (
        f"#batch-latch-checkpoint,1,{URL}\n"
        "1,A,success,200,latched,,2025-01-01T00:00:00Z\n"
        "2,B,not_found,404,Customer with id 2 not found.,not_found,2025-01-01T00:00:01Z\n"
        '3,"C,with comma",success,200,latched,,2025-01-01T00:00:02Z\n'
    )
    (tmp_path / FILENAME).write_text(v1, encoding="utf-8")

    store = Checkpoint.open(tmp_path, URL)
    store.record(Record(4, "D", "success", 200, "latched", "", "2026-01-01T00:00:00Z", "new", ""))
    store.close()

    text = (tmp_path / FILENAME).read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"#batch-latch-checkpoint,3,{URL}"
    assert not list(tmp_path.glob(".*upgrade*"))  # no temporary file left behind
    store = Checkpoint.open(tmp_path, URL)
    store.close()
    table = store.records.table
    assert table["f"].to_pylist() == [1, 2, 3, 4]
    assert table["g"].to_pylist() == ["A", "B", "C,with comma", "D"]
    assert table["s"].to_pylist() == ["success", "not_found", "success", "success"]
    # v1 wrote blind: what its successes replaced is unknown.
    assert table["c"].to_pylist() == ["unknown", "", "unknown", "new"]
    assert table["p"].to_pylist() == ["", "", "", ""]
    assert table["t"].to_pylist()[0] == "2025-01-01T00:00:00Z"
    assert table["m"].to_pylist()[1] == "Customer with id 2 not found."


def test_a_v1_checkpoint_of_another_api_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    v1 = "#batch-latch-checkpoint,1,https://secure.fusebill.com/v1\n1,A,success,200,ok,,t\n"
    (tmp_path / FILENAME).write_text(v1, encoding="utf-8")
    with pytest.raises(CheckpointError, match="bound to"):
        Checkpoint.open(tmp_path, URL)
    assert (tmp_path / FILENAME).read_text(encoding="utf-8") == v1


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_text(f"#batch-latch-checkpoint,9,{URL}\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a batch-latch checkpoint"):
        Checkpoint.open(tmp_path, URL)
