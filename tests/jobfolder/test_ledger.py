"""The job's ledger, ``OUT/job.db``: a write's intent durable before it is sent, withdrawn
when it never left, outcomes durable before they count, read back in the order written
after a reopen (and after a kill -9), the job bound to the API that answered, ``--fresh``
forgetting for the re-run rules while the ledger keeps every line, many workers at once,
a full disk, and every job.db it cannot use refused with exit 2, left exactly as it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from batch_latch.errors import CheckpointError
from batch_latch.jobfolder import ledger as ledger_module
from batch_latch.jobfolder.job import open_job
from batch_latch.jobfolder.ledger import (
    FILENAME,
    FORMAT,
    WRITING,
    WRITING_NOTE,
    Entry,
    Ledger,
    LedgerError,
    LedgerWriteError,
    check,
)
from tests.ledgers import command

URL = "http://127.0.0.1:8765/v1"
LIVE = "https://secure.fusebill.com/v1"
REPO = Path(__file__).resolve().parents[2]


def outcome(fid: int, gid: str, status: str = "success", message: str = "latched") -> Entry:
    http = 200 if status == "success" else 404
    return Entry(fid, gid, status, "new", "", "", http, message, "2026-01-01T00:00:00Z", None, True)


def intent(fid: int, gid: str, previous: str = "") -> Entry:
    return Entry(fid, gid, WRITING, "new", previous, at="2026-01-01T00:00:00Z", row=2)


def lines(out: Path, url: str = URL) -> list[tuple[int, str, str]]:
    """(fusebillId, geotabId, status) of every line the re-run rules read, in order."""
    ledger = Ledger.open(out, create=False)
    try:
        table = ledger.records(url)[0].table
    finally:
        ledger.close()
    return list(zip(table["f"].to_pylist(), table["g"].to_pylist(), table["s"].to_pylist()))


def seen_by_another_reader(out: Path, sql: str) -> list[tuple[object, ...]]:
    """What a second connection (another process, a crash's survivor) reads: committed only."""
    db = sqlite3.connect(f"file:{out / FILENAME}?mode=ro", uri=True)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def folder_state(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# --- writing and reading back -----------------------------------------------------------------


def test_lines_survive_a_reopen_in_the_order_written(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(1, "A", "not_found"))
        ledger.record(outcome(2, 'B,"quoted", with commas'))
        ledger.record(outcome(1, "A"))  # a later run latched it after all

    assert lines(tmp_path) == [
        (1, "A", "not_found"),
        (2, 'B,"quoted", with commas', "success"),
        (1, "A", "success"),
    ]
    with command(tmp_path, URL) as ledger:  # reopened: the log goes on after what it holds
        ledger.record(outcome(3, "C"))
    assert [f for f, _, _ in lines(tmp_path)] == [1, 2, 1, 3]
    seqs = seen_by_another_reader(tmp_path, "SELECT seq FROM log ORDER BY seq")
    assert [s for (s,) in seqs] == [1, 2, 3, 4]


def test_records_keep_every_field_of_a_line(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(
            Entry(1, "A", "success", "relatch", "OLD", "", 200, "latched", "2026-01-01T00:00:00Z")
        )
        ledger.record(
            Entry(2, "B", "failed", "", "", "http_400", 400, "no", "2026-01-01T00:00:01Z", 3, True)
        )

    ledger = Ledger.open(tmp_path, create=False)
    try:
        table = ledger.records(URL)[0].table
    finally:
        ledger.close()
    assert table.column_names == ["f", "g", "s", "h", "m", "k", "c", "p", "t", "x"]
    assert table["c"].to_pylist() == ["relatch", ""]
    assert table["p"].to_pylist() == ["OLD", ""]
    assert table["h"].to_pylist() == [200, 400]
    assert table["k"].to_pylist() == ["", "http_400"]
    assert table["m"].to_pylist() == ["latched", "no"]
    assert table["t"].to_pylist() == ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]
    assert table["x"].to_pylist() == [False, True]


def test_a_message_with_line_breaks_is_kept_on_one_line(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(7, "G", "failed", message="first line\r\nsecond\tline"))

    assert seen_by_another_reader(tmp_path, "SELECT message FROM events") == [
        ("first line second line",)
    ]


def test_only_the_commands_that_send_count_for_the_rerun_rules(tmp_path: Path) -> None:
    with command(tmp_path, URL, "plan") as ledger:
        ledger.record(Entry(1, "A", "valid", "new", "", "", 200, "would latch", "t"))
    with command(tmp_path, URL, "run") as ledger:
        ledger.record(outcome(2, "B"))
    with command(tmp_path, URL, "undo") as ledger:
        ledger.record(Entry(2, "", "success", "undo", "", "", 200, "unlatched", "t"))

    assert lines(tmp_path) == [(2, "B", "success"), (2, "", "success")]


def test_a_command_refused_before_it_did_anything_leaves_no_trace(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    try:
        refused_early = ledger.begin("a", "run", started_at="t", base_url=URL)
        ledger.forget(refused_early)
        ledger.command = ledger.begin("b", "run", started_at="t", base_url=URL)
        ledger.record(outcome(1, "A"))
        ledger.forget(ledger.command)  # it recorded something: it stays
    finally:
        ledger.close()

    assert seen_by_another_reader(tmp_path, "SELECT run_id FROM runs") == [("b",)]


# --- durability: intent before the send, outcome before it counts ------------------------------


def test_a_writes_intent_is_committed_before_intend_returns(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        seq = ledger.intend(intent(1, "A", previous="OLD"))
        # The request may leave now: another reader already sees the intent.
        assert seen_by_another_reader(
            tmp_path, "SELECT seq, fusebill_id, geotab_id, previous, status FROM log"
        ) == [(seq, 1, "A", "OLD", WRITING)]
        ledger.record(outcome(2, "B"))
        assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM log") == [(2,)]
        ledger.flush()  # nothing is waiting: flushing adds nothing
        assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM log") == [(2,)]


def test_a_withdrawn_intent_leaves_no_trace(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        seq = ledger.intend(intent(1, "A"))
        ledger.withdraw(seq)  # a stop before it was sent
        assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM log") == [(0,)]

    assert lines(tmp_path) == []
    assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM events") == [(0,)]
    assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM customers") == [(0,)]


def test_an_intent_whose_answer_was_recorded_is_settled(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.intend(intent(1, "A"))
        ledger.record(outcome(1, "A"))

    assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM open_writes") == [(0,)]
    assert seen_by_another_reader(tmp_path, "SELECT fusebillId, status FROM events") == [
        (1, "success")
    ]


KILLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from batch_latch.jobfolder.ledger import Entry, Ledger, WRITING

    ledger = Ledger.open(Path(sys.argv[1]))
    ledger.command = ledger.begin("killed-run", "run", started_at="2026-01-01T00:00:00Z",
                                  base_url=sys.argv[2])
    ledger.record(Entry(1, "A", "success", "new", "", "", 200, "latched", "t", 2, True))
    ledger.intend(Entry(2, "B", WRITING, "relatch", "OLD", at="t", row=3))
    print("sending", flush=True)
    time.sleep(60)
    """
)


def test_kill_9_after_intend_loses_nothing_and_the_write_stays_open(tmp_path: Path) -> None:
    victim = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path), URL],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "sending"  # blocks until both are durable
        victim.kill()  # SIGKILL: nothing is flushed or closed in the victim
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout=10)
        if victim.stdout is not None:
            victim.stdout.close()

    check(tmp_path)  # still a good ledger
    ledger = Ledger.open(tmp_path, create=False)
    try:
        assert ledger.query("SELECT ended_at, exit_code FROM runs") == [(None, None)]
        assert ledger.query("SELECT fusebillId, status, message FROM events") == [
            (1, "success", "latched"),
            (2, WRITING, WRITING_NOTE),
        ]
        assert ledger.query(
            "SELECT fusebillId, before, holds, state FROM customers ORDER BY fusebillId"
        ) == [
            (1, None, "A", "latched"),
            (2, "OLD", None, "unknown"),
        ]
        assert ledger.query("SELECT geotabId, status FROM pairs WHERE fusebillId = 2") == [
            ("B", WRITING)
        ]
    finally:
        ledger.close()


def test_workers_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    with command(tmp_path, URL) as ledger:

        def worker(base: int) -> None:
            start.wait(timeout=10)
            for i in range(50):
                if i % 5 == 0:
                    ledger.withdraw(ledger.intend(intent(base * 1000 + i, "never sent")))
                ledger.record(outcome(base * 1000 + i, f"G{base}-{i}"))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    recorded = lines(tmp_path)
    assert len(recorded) == 400
    assert {fid for fid, _, _ in recorded} == {b * 1000 + i for b in range(8) for i in range(50)}
    assert all(status == "success" for _, _, status in recorded)
    for b in range(8):  # each worker's lines in the order it recorded them
        mine = [fid for fid, _, _ in recorded if fid // 1000 == b]
        assert mine == [b * 1000 + i for i in range(50)]


def test_a_full_disk_stops_with_exit_3_and_a_one_line_reason(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    ledger.command = ledger.begin("r", "run", started_at="t", base_url=URL)
    pages = ledger.query("PRAGMA page_count")[0][0]
    # The disk fills up: SQLite may not grow the file by another page.
    ledger._db.execute(f"PRAGMA max_page_count={pages}")

    with pytest.raises(LedgerWriteError) as caught:
        ledger.record(outcome(1, "A" * 5000))

    assert caught.value.exit_code == 3
    assert "No space left on device: free some space and run again" in str(caught.value)
    assert str(tmp_path / FILENAME) in str(caught.value)
    assert "\n" not in str(caught.value)
    # Every later caller hears the same, rather than waiting for ever.
    with pytest.raises(LedgerWriteError):
        ledger.record(outcome(2, "B"))
    # Closing it (the command's ``finally``) does not say it again: the command has decided
    # the exit code (2 when nothing was sent) and a second error would replace its own.
    ledger.close()
    check(tmp_path)  # what was recorded before is a good ledger still
    assert seen_by_another_reader(tmp_path, "SELECT count(*) FROM log") == [(0,)]


# --- the job's API --------------------------------------------------------------------------


def test_a_job_holding_answers_from_another_api_is_refused(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(1, "A"))
    before = folder_state(tmp_path)

    with pytest.raises(CheckpointError) as caught:
        open_job(tmp_path, LIVE)
    text = str(caught.value)
    assert f"bound to {URL}" in text and LIVE in text
    assert "--out" in text and "--fresh" not in text
    assert caught.value.exit_code == 2
    assert folder_state(tmp_path) == before


def test_a_job_no_answer_came_to_is_not_bound(tmp_path: Path) -> None:
    wrong = "http://127.0.0.1:8765"
    with command(tmp_path, wrong):  # a wrong URL: nothing answered
        pass
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(1, "A"))

    assert lines(tmp_path) == [(1, "A", "success")]
    ledger = open_job(tmp_path, URL)
    try:
        assert ledger.bound_to() == URL
    finally:
        ledger.close()


def test_unanswered_writes_to_an_unbound_url_are_kept_not_lost(tmp_path: Path) -> None:
    wrong = "http://127.0.0.1:8765"
    with command(tmp_path, wrong) as ledger:
        ledger.intend(intent(1, "A"))  # sent; nothing in Fusebill's format came back
    with command(tmp_path, URL):  # the URL fixed: the job is not bound to the wrong one
        pass

    assert lines(tmp_path, wrong) == [(1, "A", WRITING)]  # under its own URL
    assert lines(tmp_path, URL) == []
    assert seen_by_another_reader(tmp_path, "SELECT fusebillId, state FROM customers") == [
        (1, "unknown")
    ]


# --- --fresh -------------------------------------------------------------------------------


def test_fresh_forgets_for_the_rerun_rules_and_the_ledger_keeps_every_line(
    tmp_path: Path,
) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(1, "A"))
    with command(tmp_path, URL, fresh=True) as ledger:
        ledger.record(outcome(2, "B"))
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(3, "C"))

    ledger = Ledger.open(tmp_path, create=False)
    try:
        both, start = ledger.records(URL)
        assert both.fusebill_id.tolist() == [1, 2, 3]  # undo and the story see them all
        assert start == 1
        assert both.since(start).fusebill_id.tolist() == [2, 3]  # the re-run rules: these
        other, other_start = ledger.records(LIVE)
        assert len(other) == 0 and other_start == 0
        assert [r for (r,) in ledger.query("SELECT fusebillId FROM events")] == [1, 2, 3]
    finally:
        ledger.close()


def test_no_fresh_start_forgets_nothing(tmp_path: Path) -> None:
    with command(tmp_path, URL) as ledger:
        ledger.record(outcome(1, "A"))
    with command(tmp_path, URL, "plan", fresh=True):  # a plan sends nothing: no fresh start
        pass

    ledger = Ledger.open(tmp_path, create=False)
    try:
        assert ledger.records(URL)[1] == 0
    finally:
        ledger.close()


# --- a job.db that cannot be used: exit 2, left as it is ----------------------------------------


def good_job(out: Path) -> bytes:
    with command(out, URL) as ledger:
        lines = [outcome(i, f"G{i}", message="latched " * 5) for i in range(2000)]
        ledger.record_many(lines, ledger.command)
    return (out / FILENAME).read_bytes()


def left_as_it_was(out: Path, before: dict[str, bytes]) -> None:
    """job.db's bytes unchanged, nothing else of the folder changed; SQLite's own side files
    may appear beside it (``-shm``; ``-wal`` only empty: nothing waits to be applied)."""
    after = folder_state(out)
    assert after.pop(FILENAME + "-wal", b"") == b""
    after.pop(FILENAME + "-shm", None)
    assert after == before


def refused(
    out: Path, match: str, *, opening_too: bool = True, advice: str = "restore it from a backup"
) -> None:
    """``check`` (before the input is read) and, with ``opening_too``, every way of opening
    the job refuse it with one line naming the file and what to do; the file is left as it
    was."""
    before = folder_state(out)
    attempts: list[Callable[[], None]] = [lambda: check(out).wait()]
    if opening_too:
        attempts += [
            lambda: Ledger.open(out, create=False).close(),
            lambda: Ledger.open(out).close(),
            lambda: open_job(out, URL).close(),
        ]
    for attempt in attempts:
        with pytest.raises(LedgerError, match=match) as caught:
            attempt()
        text = str(caught.value)
        assert caught.value.exit_code == 2
        assert str(out / FILENAME) in text and "\n" not in text
        assert advice in text
        left_as_it_was(out, before)


def test_an_empty_job_db_is_refused(tmp_path: Path) -> None:
    good_job(tmp_path)
    (tmp_path / FILENAME).write_bytes(b"")

    refused(tmp_path, r"is empty \(0 bytes\)")
    assert (tmp_path / FILENAME).read_bytes() == b""


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")

    refused(tmp_path, "is not a database")


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    db.execute("INSERT INTO invoices VALUES (1, 9.5)")
    db.commit()
    db.close()

    refused(tmp_path, "is not a batch-latch job database")


def test_a_job_db_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    good_job(tmp_path)
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute(f"PRAGMA user_version={FORMAT + 1}")
    db.close()

    refused(
        tmp_path,
        rf"newer batch-latch \(job format {FORMAT + 1};",
        advice="run this job with the newer batch-latch that wrote it",
    )


@pytest.mark.parametrize(
    ("where", "damage"),
    [
        ("its schema", lambda d: d[:100] + b"\xff" * 300 + d[400:]),
        ("its second page", lambda d: d[:4096] + b"\xab" * 4096 + d[8192:]),
        ("its tail, cut off", lambda d: d[: len(d) // 2]),
    ],
)
def test_a_damaged_job_db_is_refused(
    tmp_path: Path, where: str, damage: Callable[[bytes], bytes]
) -> None:
    (tmp_path / FILENAME).write_bytes(damage(good_job(tmp_path)))

    refused(tmp_path, "is damaged|cannot be opened")


def test_damage_in_the_logs_pages_is_found_before_the_input_is_read(tmp_path: Path) -> None:
    # Opening reads the schema and the first pages only: the check reads every page.
    data = good_job(tmp_path)
    middle = len(data) // 2
    (tmp_path / FILENAME).write_bytes(data[:middle] + b"\xab" * 8192 + data[middle + 8192 :])

    refused(tmp_path, "is damaged", opening_too=False)


def test_a_read_beside_the_check_gives_way_to_the_checks_verdict(tmp_path: Path) -> None:
    """What a command reads while the full check runs (undo's targets) is kept when the
    ledger is sound; when it is damaged, the damage is the one line, also when the read
    itself failed on it."""

    def failing() -> int:
        raise ValueError("the read's own failure")

    good_job(tmp_path)
    with check(tmp_path) as checking:
        assert checking.read_meanwhile(lambda: 42) == 42
    with check(tmp_path) as checking, pytest.raises(ValueError, match="read's own"):
        checking.read_meanwhile(failing)
    data = (tmp_path / FILENAME).read_bytes()
    middle = len(data) // 2
    (tmp_path / FILENAME).write_bytes(data[:middle] + b"\xab" * 8192 + data[middle + 8192 :])
    for read in (lambda: 42, failing):
        with check(tmp_path) as checking, pytest.raises(LedgerError, match="is damaged"):
            checking.read_meanwhile(read)


def test_a_folder_without_a_job_db_passes_the_check_and_gets_a_new_one(tmp_path: Path) -> None:
    check(tmp_path).wait()
    assert list(tmp_path.iterdir()) == []  # checking made nothing
    with pytest.raises(LedgerError, match=r"holds no job\.db"):
        Ledger.open(tmp_path, create=False)
    Ledger.open(tmp_path / "new").close()
    assert seen_by_another_reader(tmp_path / "new", "PRAGMA user_version") == [(FORMAT,)]
    assert ledger_module.FILENAME == "job.db"


def test_a_second_end_keeps_the_costs_the_first_recorded(tmp_path: Path) -> None:
    """A stop after the reports (a full disk) ends the command again with its exit code
    only: the requests, rows and stop reason the reports' end recorded stay."""
    ledger = Ledger.open(tmp_path)
    try:
        command = ledger.begin("r1", "run", started_at="2026-12-07T00:00:00Z", rows=7, invalid=2)
        ledger.end(command, ended_at="t1", exit_code=1, requests=42, stop_reason="max_requests")
        ledger.end(command, ended_at="t2", exit_code=3)
        got = ledger.query("SELECT exit_code, requests, rows, invalid, stop_reason FROM commands")
    finally:
        ledger.close()
    assert got == [(3, 42, 7, 2, "max_requests")]
