"""The v3 checkpoint (``checkpoint.csv``), read only: its first line (format and API), its
records in the order written (formats 1, 2 and 3), a torn last line, wrong and damaged
files; and a v3 job folder taken into ``job.db`` losing nothing, its files left as they were.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from batch_latch.errors import CheckpointError
from batch_latch.jobfolder.job import open_job
from batch_latch.jobfolder.ledger import FILENAME as JOB_DB
from batch_latch.jobfolder.ledger import WRITING
from batch_latch.jobfolder.v3_checkpoint import FILENAME, header, read_table

URL = "http://127.0.0.1:8765/v1"
LIVE = "https://secure.fusebill.com/v1"

V3 = (
    f"#batch-latch-checkpoint,3,{URL}\n"
    "1,A,not_found,404,Customer 1 not found.,not_found,,,2026-01-01T00:00:00Z\n"
    '2,"B,""quoted"", with commas",success,200,latched,,relatch,OLD,2026-01-01T00:00:01Z\n'
    "3,C,writing,,,,new,,2026-01-01T00:00:02Z\n"
    "1,A,success,200,latched,,new,,2026-01-01T00:00:03Z\n"
)
V1 = (
    f"#batch-latch-checkpoint,1,{URL}\n"
    "1,A,success,200,latched,,2025-01-01T00:00:00Z\n"
    "2,B,not_found,404,Customer with id 2 not found.,not_found,2025-01-01T00:00:01Z\n"
    '3,"C,with comma",success,200,latched,,2025-01-01T00:00:02Z\n'
)


def checkpoint(folder: Path, text: str, name: str = FILENAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def columns(path: Path) -> dict[str, list[object]]:
    version, _ = header(path)
    before = path.read_bytes()
    table = read_table(path, version)
    assert path.read_bytes() == before  # read only
    return {name: table[name].to_pylist() for name in table.column_names}


# --- the reader ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_first_line_names_the_format_and_the_api(tmp_path: Path, version: int) -> None:
    path = checkpoint(tmp_path, f"#batch-latch-checkpoint,{version},{URL}\n")
    assert header(path) == (version, URL)


@pytest.mark.parametrize(
    "text",
    [
        "fusebillId,geotabId\n1,A\n",  # an input sheet, not a checkpoint
        f"#batch-latch-checkpoint,9,{URL}\n",  # a format it does not know
        "",  # emptied to 0 bytes
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path, text: str) -> None:
    path = checkpoint(tmp_path, text)
    with pytest.raises(CheckpointError, match="not a batch-latch checkpoint") as caught:
        header(path)
    assert caught.value.exit_code == 2
    assert "move it away" in str(caught.value) and "--fresh" not in str(caught.value)
    assert path.read_bytes() == text.encode("utf-8")


def test_format_3_records_in_the_order_written_with_every_field(tmp_path: Path) -> None:
    got = columns(checkpoint(tmp_path, V3))

    assert list(got) == ["f", "g", "s", "h", "m", "k", "c", "p", "t"]
    assert got["f"] == [1, 2, 3, 1]
    assert got["g"] == ["A", 'B,"quoted", with commas', "C", "A"]
    assert got["s"] == ["not_found", "success", WRITING, "success"]
    assert got["h"] == [404, 200, None, 200]
    assert got["m"] == ["Customer 1 not found.", "latched", "", "latched"]
    assert got["k"] == ["not_found", "", "", ""]
    assert got["c"] == ["", "relatch", "new", "new"]
    assert got["p"] == ["", "OLD", "", ""]
    assert got["t"][3] == "2026-01-01T00:00:03Z"


def test_format_2_reads_like_format_3(tmp_path: Path) -> None:
    path = checkpoint(tmp_path, f"#batch-latch-checkpoint,2,{URL}\n" + V3.split("\n", 1)[1])
    assert columns(path) == columns(checkpoint(tmp_path / "v3", V3))


def test_a_v1_checkpoint_reads_its_successes_as_change_unknown(tmp_path: Path) -> None:
    got = columns(checkpoint(tmp_path, V1))

    assert got["f"] == [1, 2, 3]
    assert got["g"] == ["A", "B", "C,with comma"]
    assert got["s"] == ["success", "not_found", "success"]
    # v1 wrote blind: what its successes replaced is unknown.
    assert got["c"] == ["unknown", "", "unknown"]
    assert got["p"] == ["", "", ""]
    assert got["t"][0] == "2025-01-01T00:00:00Z"
    assert got["m"][1] == "Customer with id 2 not found."


def test_a_torn_last_line_is_left_out_and_the_file_left_as_it_is(tmp_path: Path) -> None:
    path = checkpoint(tmp_path, V3 + "2,B,succ")  # the crash came mid-append

    assert columns(path)["f"] == [1, 2, 3, 1]
    assert path.read_bytes().endswith(b"2,B,succ")


def test_a_damaged_record_is_reported_not_raised_as_a_crash(tmp_path: Path) -> None:
    path = checkpoint(tmp_path, V3 + "not-a-number,A,success,200,latched,,new,,t\n")
    with pytest.raises(CheckpointError, match="damaged") as caught:
        read_table(path)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


# --- a v3 job taken into job.db -----------------------------------------------------------------


def taken_in(out: Path, url: str = URL) -> list[tuple[object, ...]]:
    """(fusebillId, geotabId, status, change, previous) of the job's lines for ``url``."""
    ledger = open_job(out, url, io.StringIO())
    try:
        table = ledger.records(url)[0].table
    finally:
        ledger.close()
    return list(zip(*(table[n].to_pylist() for n in ("f", "g", "s", "c", "p")), strict=True))


def test_a_v3_job_is_taken_in_losing_nothing_and_its_files_stay(tmp_path: Path) -> None:
    path = checkpoint(tmp_path, V3)

    assert taken_in(tmp_path) == [
        (1, "A", "not_found", "", ""),
        (2, 'B,"quoted", with commas', "success", "relatch", "OLD"),
        (3, "C", WRITING, "new", ""),
        (1, "A", "success", "new", ""),
    ]
    assert path.read_text(encoding="utf-8") == V3
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME, JOB_DB]
    # Taken in once: opening it again reads job.db, the checkpoint is not taken in again.
    assert len(taken_in(tmp_path)) == 4


def test_a_v1_job_is_taken_in_with_its_successes_written_blind(tmp_path: Path) -> None:
    checkpoint(tmp_path, V1)

    assert taken_in(tmp_path) == [
        (1, "A", "success", "unknown", ""),
        (2, "B", "not_found", "", ""),
        (3, "C,with comma", "success", "unknown", ""),
    ]
    assert (tmp_path / FILENAME).read_text(encoding="utf-8") == V1


def test_a_v3_job_killed_mid_append_is_taken_in(tmp_path: Path) -> None:
    checkpoint(tmp_path, V3 + "2,B,succ")

    assert [line[0] for line in taken_in(tmp_path)] == [1, 2, 3, 1]


def test_checkpoints_set_aside_by_fresh_are_taken_in_first(tmp_path: Path) -> None:
    old = f"#batch-latch-checkpoint,3,{URL}\n9,Z,success,200,latched,,new,,2025-06-01T00:00:00Z\n"
    checkpoint(tmp_path, old, "checkpoint-20250601T000000Z.csv.old")
    checkpoint(tmp_path, V3)

    ledger = open_job(tmp_path, URL, io.StringIO())
    try:
        lines, start = ledger.records(URL)
    finally:
        ledger.close()
    assert lines.fusebill_id.tolist() == [9, 1, 2, 3, 1]  # undo and the story see them all
    assert lines.since(start).fusebill_id.tolist() == [1, 2, 3, 1]  # the re-run rules: these


def test_a_v3_job_of_another_api_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    v1 = f"#batch-latch-checkpoint,1,{LIVE}\n1,A,success,200,ok,,t\n"
    path = checkpoint(tmp_path, v1)

    with pytest.raises(CheckpointError, match=f"bound to {LIVE}") as caught:
        open_job(tmp_path, URL, io.StringIO())
    assert URL in str(caught.value) and "--fresh" not in str(caught.value)
    assert path.read_text(encoding="utf-8") == v1


def test_a_damaged_v3_checkpoint_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    text = V3 + "not-a-number,A,success,200,latched,,new,,t\n"
    path = checkpoint(tmp_path, text)

    for _ in range(2):  # the same again: --fresh takes a v3 job in all the same
        with pytest.raises(CheckpointError, match="damaged") as caught:
            open_job(tmp_path, URL, io.StringIO())
        assert caught.value.exit_code == 2
        assert "move it away" in str(caught.value) and "--fresh" not in str(caught.value)
        assert path.read_text(encoding="utf-8") == text
        assert [p.name for p in tmp_path.iterdir()] == [FILENAME]  # no half-made job
