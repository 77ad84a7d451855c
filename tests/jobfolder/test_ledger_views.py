"""The ledger's views, part of the outside contract ("v4 One ledger"): ``pairs`` (a pair's
status, in the contract's order: ``undone``, ``replaced``, ``writing``, ``fixed``, else its
latest outcome), ``customers`` (``latched``, ``restored``, ``unknown``), ``events`` (one per
row a command touched; none for rows settled earlier, none for a dry run) and ``runs``.

Most tests write the job's lines through the real ``Ledger``, as the commands do; the last
ones run the real CLI against the sandbox and read ``job.db`` with plain ``sqlite3``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batch_latch import cli
from batch_latch.jobfolder.ledger import FILENAME, WRITING, WRITING_NOTE, Entry, Ledger
from batch_latch.sandbox import Sandbox, SandboxConfig
from batch_latch.settings import KEY_VARIABLE, URL_VARIABLE
from tests.conftest import write_csv
from tests.ledgers import command

URL = "http://127.0.0.1:9/v1"
KEY = "sk_test_VIEWS_7"
AT = "2026-01-01T00:00:00Z"


def line(
    fid: int,
    gid: str,
    status: str = "success",
    change: str = "new",
    *,
    row: int | None = None,
    previous: str = "",
    key: str = "",
    message: str = "",
    settles: bool = True,
) -> Entry:
    http = {"success": 200, "not_found": 404}.get(status, 400 if key == "http_400" else None)
    return Entry(fid, gid, status, change, previous, key, http, message, AT, row, settles)


def intent(fid: int, gid: str, *, row: int | None = None, previous: str = "") -> Entry:
    """A write recorded before it was sent (its answer not recorded yet)."""
    return Entry(fid, gid, WRITING, "relatch" if previous else "new", previous, at=AT, row=row)


def job(out: Path, *commands: tuple[str, list[Entry]]) -> Path:
    """One command per (kind, lines), in order, each begun and ended like a real one."""
    for kind, lines in commands:
        with command(out, URL, kind) as ledger:
            for entry in lines:
                if entry.status == WRITING:
                    ledger.intend(entry)
                else:
                    ledger.record(entry)
    return out


def select(out: Path, sql: str) -> list[tuple[object, ...]]:
    """Read job.db as ops would: any SQLite client, read only."""
    db = sqlite3.connect(f"file:{out / FILENAME}?mode=ro", uri=True)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def pairs(out: Path) -> dict[tuple[object, object], object]:
    return {(f, g): s for f, g, s in select(out, "SELECT fusebillId, geotabId, status FROM pairs")}


def customers(out: Path) -> dict[object, tuple[object, ...]]:
    rows = select(out, "SELECT fusebillId, before, holds, state FROM customers")
    return {r[0]: r[1:] for r in rows}


def columns(out: Path, view: str) -> list[str]:
    db = sqlite3.connect(f"file:{out / FILENAME}?mode=ro", uri=True)
    try:
        return [d[0] for d in db.execute(f"SELECT * FROM {view} LIMIT 0").description]
    finally:
        db.close()


# --- pairs ------------------------------------------------------------------------------------


def test_a_pairs_status_is_its_latest_outcome(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", "not_found", "", row=2, key="not_found")]),
        (
            "run",
            [
                line(1, "A", row=2),  # --retry-not-found: latched this time
                line(2, "B", "failed", "", row=3, key="http_503", settles=False),
                line(3, "C", "not_found", "", row=4, key="not_found"),
                line(4, "D", "pending", "", row=5, settles=False),
            ],
        ),
        ("run", [line(2, "B", "failed", "", row=3, key="http_400")]),
    )

    assert pairs(tmp_path) == {
        (1, "A"): "success",
        (2, "B"): "failed",
        (3, "C"): "not_found",
        (4, "D"): "pending",
    }
    assert select(tmp_path, "SELECT run_id, row, error_key FROM pairs WHERE fusebillId = 2") == [
        ("test-3-run", 3, "http_400")
    ]


def test_a_pair_repeated_over_runs_counts_once(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", "failed", "", row=2, key="http_503", settles=False)]),
        ("run", [line(1, "A", row=2)]),
        ("run", [line(1, "A", row=9)]),  # the same pair on another sheet row, with --fresh
    )

    assert select(tmp_path, "SELECT fusebillId, geotabId, status, run_id, row FROM pairs") == [
        (1, "A", "success", "test-3-run", 9)
    ]


def test_an_only_planned_pair_is_valid_and_a_run_gives_it_its_outcome(tmp_path: Path) -> None:
    job(tmp_path, ("plan", [line(1, "A", "valid", row=2), line(2, "B", "valid", row=3)]))
    assert pairs(tmp_path) == {(1, "A"): "valid", (2, "B"): "valid"}

    job(tmp_path, ("run", [line(1, "A", row=2)]))
    assert pairs(tmp_path) == {(1, "A"): "success", (2, "B"): "valid"}


def test_a_plan_after_a_run_leaves_the_pairs_run_outcome(tmp_path: Path) -> None:
    # "valid when only planned": a pair counts by its latest run; a plan only reads.
    job(
        tmp_path,
        (
            "run",
            [
                line(1, "A", "failed", "", row=2, key="http_503", settles=False),
                line(2, "B", "pending", "", row=3, settles=False),
            ],
        ),
        (
            "plan",
            [
                line(1, "A", "valid", row=2),
                line(2, "B", "valid", row=3),
                line(3, "C", "valid", row=4),
            ],
        ),
    )

    assert pairs(tmp_path) == {(1, "A"): "failed", (2, "B"): "pending", (3, "C"): "valid"}
    assert select(tmp_path, "SELECT run_id FROM pairs WHERE fusebillId = 1") == [("test-1-run",)]


def test_rows_a_command_has_not_reached_are_pending_pairs(tmp_path: Path) -> None:
    sha = "5e" * 32
    ledger = Ledger.open(tmp_path)
    try:
        ledger.command = ledger.begin("r", "run", started_at=AT, base_url=URL, input_sha256=sha)
        ledger.remember_input(  # the sheet's valid rows, as the command read them
            sha,
            np.array([2, 3, 5], np.int64),
            np.array([1, 2, 3], np.int64),
            pa.array(["A", "B", "C"]),
        )
        ledger.record(line(1, "A", row=2))  # then killed
    finally:
        ledger.close()

    assert select(tmp_path, "SELECT fusebillId, geotabId, status, row FROM pairs ORDER BY row") == [
        (1, "A", "success", 2),
        (2, "B", "pending", 3),
        (3, "C", "pending", 5),
    ]


def test_an_input_only_a_dry_run_read_makes_no_pairs(tmp_path: Path) -> None:
    sha = "d7" * 32
    ledger = Ledger.open(tmp_path)
    try:
        ledger.begin("d", "dry_run", started_at=AT, base_url=URL, input_sha256=sha)
        ledger.remember_input(sha, np.array([2]), np.array([1]), pa.array(["A"]))
    finally:
        ledger.close()

    assert select(tmp_path, "SELECT count(*) FROM pairs") == [(0,)]


def test_a_latch_undo_put_back_is_undone_never_success(tmp_path: Path) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                line(1, "A", row=2),
                line(2, "B", "success", "relatch", row=3, previous="OLD"),
                line(3, "C", row=4),
            ],
        ),
        (
            "undo",
            [
                line(1, "", "success", "undo", row=2, message="unlatched"),
                line(2, "OLD", "success", "undo", row=3, previous="OLD", message="latched back"),
                line(3, "C", "failed", "undo", row=4, key="changed_since"),  # left alone
            ],
        ),
    )

    # The undo's own lines are not pairs: (1, "") and (2, "OLD") are not in the view.
    assert pairs(tmp_path) == {(1, "A"): "undone", (2, "B"): "undone", (3, "C"): "success"}


def test_a_pair_the_job_later_latched_to_another_geotab_id_is_replaced(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", row=2), line(2, "X", row=3)]),
        ("run", [line(1, "B", "success", "relatch", row=2, previous="")]),
    )
    assert pairs(tmp_path) == {(1, "A"): "replaced", (1, "B"): "success", (2, "X"): "success"}

    # undone comes first: undo put back what customer 1 held before the job.
    job(tmp_path, ("undo", [line(1, "", "success", "undo", row=2)]))
    assert pairs(tmp_path) == {(1, "A"): "undone", (1, "B"): "undone", (2, "X"): "success"}


def test_a_write_whose_answer_never_came_is_writing_until_a_read_settles_it(
    tmp_path: Path,
) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                intent(1, "A", row=2),  # kill -9: no answer, no outcome
                intent(2, "B", row=3),
                # a lost answer and a failed read-back: the row failed, nothing was settled
                line(2, "B", "failed", "", row=3, key="timeout", settles=False),
                intent(3, "C", row=4),
                line(3, "C", row=4),  # the answer came
            ],
        ),
    )
    assert pairs(tmp_path) == {(1, "A"): WRITING, (2, "B"): WRITING, (3, "C"): "success"}

    # A later command's read shows what customer 2 holds: the write is settled.
    job(tmp_path, ("run", [line(2, "B", "success", "new", row=3)]))
    assert pairs(tmp_path) == {(1, "A"): WRITING, (2, "B"): "success", (3, "C"): "success"}


def test_replaced_comes_before_writing_and_writing_before_fixed_and_latest(
    tmp_path: Path,
) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                line(1, "A", row=2),
                line(1, "B", "success", "relatch", row=2),
                intent(1, "A", row=2, previous="B"),  # back to A, its answer lost
                line(2, "D", "failed", "", row=3, key="http_400"),
                line(2, "E", row=3),  # row 3 fixed...
                intent(2, "D", row=3, previous="E"),  # ...then the old pair sent again, lost
                line(3, "F", "failed", "", row=4, key="http_503", settles=False),
                intent(3, "F", row=4),  # sent again: its answer lost
            ],
        ),
    )

    got = pairs(tmp_path)
    assert got[(1, "A")] == "replaced"
    assert got[(2, "D")] == WRITING
    assert got[(3, "F")] == WRITING


def test_a_pair_every_row_of_which_was_sent_again_with_another_pair_is_fixed(
    tmp_path: Path,
) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                line(1, "A", "failed", "", row=5, key="http_400"),
                line(2, "C", "failed", "", row=6, key="http_400"),
                line(2, "C", "failed", "", row=9, key="http_400"),
                line(4, "G", "not_found", "", row=8, key="not_found"),
            ],
        ),
        (
            "run",  # failed.csv fed back, fixed: its rows keep their sheet numbers
            [
                line(1, "B", row=5),  # another geotabId
                line(2, "D", row=6),  # row 9 still carries (2, C): not fixed
                line(5, "G", row=8),  # the fusebillId was the typo
            ],
        ),
    )

    assert pairs(tmp_path) == {
        (1, "A"): "fixed",
        (1, "B"): "success",
        (2, "C"): "failed",
        (2, "D"): "success",
        (4, "G"): "fixed",
        (5, "G"): "success",
    }


def test_a_fix_only_planned_does_not_make_the_pair_fixed(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", "failed", "", row=5, key="http_400")]),
        ("plan", [line(1, "B", "valid", row=5)]),  # the row fixed, then only planned
    )
    assert pairs(tmp_path) == {(1, "A"): "failed", (1, "B"): "valid"}

    job(tmp_path, ("run", [line(1, "B", row=5)]))  # now sent with the other pair
    assert pairs(tmp_path) == {(1, "A"): "fixed", (1, "B"): "success"}


def test_a_pair_that_once_succeeded_is_never_fixed(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", row=2)]),
        ("run", [line(1, "A", "failed", "", row=2, key="http_400")]),  # --fresh, refused
        ("run", [line(1, "B", "failed", "", row=2, key="http_400")]),  # the row edited
    )

    assert pairs(tmp_path)[(1, "A")] == "failed"


# --- customers --------------------------------------------------------------------------------


def test_customers_the_job_wrote_and_what_it_left_there(tmp_path: Path) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                line(1, "A", row=2),
                line(2, "B", "success", "relatch", row=3, previous="OLD"),
                line(2, "C", "success", "relatch", row=3, previous="B"),  # a later change
                line(3, "Y", "success", "unknown", row=4),  # written blind (--no-read)
                line(4, "W", "success", "unchanged", row=5),  # held it already: not written
                line(5, "N", "not_found", "", row=6, key="not_found"),
                line(6, "R", "failed", "", row=7, key="relatch_refused", previous="Q"),
            ],
        ),
        ("plan", [line(7, "P", "valid", row=8)]),  # a plan writes nothing
    )

    assert customers(tmp_path) == {
        1: (None, "A", "latched"),
        2: ("OLD", "C", "latched"),  # before: what it held before the job's first change
        3: (None, "Y", "latched"),
    }


def test_customers_undo_put_back_are_restored(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("run", [line(1, "A", row=2), line(2, "B", "success", "relatch", row=3, previous="OLD")]),
        (
            "undo",
            [
                line(1, "", "success", "undo", row=2),  # unlatched: holds nothing now
                line(2, "OLD", "success", "undo", row=3, previous="OLD"),
            ],
        ),
    )
    assert customers(tmp_path) == {1: (None, None, "restored"), 2: ("OLD", "OLD", "restored")}

    job(tmp_path, ("run", [line(1, "A", row=2)]))  # latched again after its undo
    assert customers(tmp_path)[1] == (None, "A", "latched")


def test_a_customer_with_an_open_write_is_unknown_until_a_read_settles_it(
    tmp_path: Path,
) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                intent(1, "A", row=2, previous="OLD"),  # never answered
                line(2, "B", row=3),
                intent(2, "C", row=3, previous=""),  # a later write to a latched customer
                line(2, "C", "pending", "", row=3, settles=False),  # a stop: still open
                intent(3, "D", row=4),
                line(3, "D", row=4),  # answered
            ],
        ),
    )
    assert customers(tmp_path) == {
        1: ("OLD", None, "unknown"),
        2: (None, "B", "unknown"),
        3: (None, "D", "latched"),
    }

    # The next command reads customer 1 and finds what was being written: this job's latch.
    job(tmp_path, ("run", [line(1, "A", "success", "relatch", row=2, previous="OLD")]))
    assert customers(tmp_path)[1] == ("OLD", "A", "latched")


def test_writes_of_a_plan_or_dry_run_are_not_in_fusebill(tmp_path: Path) -> None:
    job(
        tmp_path,
        ("dry_run", [intent(1, "A", row=2)]),
        ("plan", [intent(2, "B", row=3)]),
    )

    assert customers(tmp_path) == {}
    assert select(tmp_path, "SELECT count(*) FROM open_writes") == [(0,)]


# --- events -----------------------------------------------------------------------------------


def test_events_show_each_outcome_and_an_open_write_only_while_it_is_open(
    tmp_path: Path,
) -> None:
    job(
        tmp_path,
        (
            "run",
            [
                intent(1, "A", row=2),
                line(1, "A", row=2, message="latched"),  # answered: its intent is no event
                intent(2, "B", row=3, previous="OLD"),  # never answered
                line(3, "C", "not_found", "", row=4, key="not_found", message="no such"),
            ],
        ),
    )

    assert columns(tmp_path, "events")[:10] == [
        "run_id",
        "at",
        "row",
        "fusebillId",
        "geotabId",
        "previous_geotabId",
        "status",
        "change",
        "error_key",
        "message",
    ]
    assert select(
        tmp_path,
        "SELECT run_id, row, fusebillId, geotabId, previous_geotabId, status, change, "
        "error_key, message FROM events",
    ) == [
        ("test-1-run", 2, 1, "A", None, "success", "new", "", "latched"),
        ("test-1-run", 3, 2, "B", "OLD", WRITING, "relatch", "", WRITING_NOTE),
        ("test-1-run", 4, 3, "C", None, "not_found", "", "not_found", "no such"),
    ]

    job(tmp_path, ("run", [line(2, "B", "success", "relatch", row=3, previous="OLD")]))
    assert select(tmp_path, "SELECT run_id, fusebillId, status FROM events") == [
        ("test-1-run", 1, "success"),
        ("test-1-run", 3, "not_found"),
        ("test-2-run", 2, "success"),
    ]


# --- runs -------------------------------------------------------------------------------------


RUNS_COLUMNS = [
    "run_id",
    "kind",
    "started_at",
    "ended_at",
    "user",
    "input",
    "input_sha256",
    "base_url",
    "plan_run_id",
    "exit_code",
    "requests",
]


def test_runs_a_command_while_it_runs_and_once_it_ended(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    try:
        plan = ledger.begin("20260101T000000.000Z-plan", "plan", started_at=AT, base_url=URL)
        ledger.end(plan, ended_at="2026-01-01T00:00:05Z", exit_code=0, requests=2)
        run = ledger.begin(
            "20260101T000010.000Z-run",
            "run",
            started_at="2026-01-01T00:00:10Z",
            user="ops",
            input="/data/sheet.csv",
            input_sha256="ab" * 32,
            base_url=URL,
            plan_run_id="20260101T000000.000Z-plan",
        )
        running = select(tmp_path, "SELECT * FROM runs")
        ledger.end(run, ended_at="2026-01-01T00:01:00Z", exit_code=3, requests=41)
    finally:
        ledger.close()

    assert columns(tmp_path, "runs")[: len(RUNS_COLUMNS)] == RUNS_COLUMNS
    assert running[1][: len(RUNS_COLUMNS)] == (
        "20260101T000010.000Z-run",
        "run",
        "2026-01-01T00:00:10Z",
        None,  # ended_at: null while it runs
        "ops",
        "/data/sheet.csv",
        "ab" * 32,
        URL,
        "20260101T000000.000Z-plan",
        None,  # exit_code: null while it runs
        0,
    )
    assert select(
        tmp_path, "SELECT run_id, kind, ended_at, plan_run_id, exit_code, requests FROM runs"
    ) == [
        ("20260101T000000.000Z-plan", "plan", "2026-01-01T00:00:05Z", None, 0, 2),
        (
            "20260101T000010.000Z-run",
            "run",
            "2026-01-01T00:01:00Z",
            "20260101T000000.000Z-plan",
            3,
            41,
        ),
    ]


# --- through the CLI, against the sandbox -------------------------------------------------------


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    fake = Sandbox(SandboxConfig(api_key=KEY)).start()
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setenv(URL_VARIABLE, fake.base_url)
    try:
        yield fake
    finally:
        fake.stop()


def batch_latch(*words: object) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main([*map(str, words), "--no-progress"])


def report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def sheet(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "sheet.csv",
        [
            ("fusebillId", "geotabId"),
            ("1000001", "A1"),  # row 2
            ("1000002", "A2"),  # row 3
            ("1000001", "A1"),  # row 4: a duplicate of row 2
            ("42", "X"),  # row 5: no such customer
            ("abc", "Y"),  # row 6: invalid
        ],
    )


def test_a_real_job_events_per_row_touched_none_for_dry_runs_or_settled_rows(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    out = tmp_path / "out"
    source = sheet(tmp_path)

    assert batch_latch("run", source, "--out", out, "--dry-run") == 1  # invalid rows: exit 1
    assert select(out, "SELECT count(*) FROM events") == [(0,)]
    assert select(out, "SELECT count(*) FROM customers") == [(0,)]

    assert batch_latch("run", source, "--out", out) == 1
    got = select(out, "SELECT fusebillId, status, row FROM events ORDER BY row")
    assert got == [(1000001, "success", 2), (1000002, "success", 3), (42, "not_found", 5)]
    # Each event as the run's results.csv shows its row.
    fields = ("fusebillId", "geotabId", "status", "change", "error_key", "message")
    shown = {int(r["row"]): r for r in report(out / "results.csv")}
    for event in select(
        out,
        "SELECT row, fusebillId, geotabId, status, change, error_key, message, "
        "COALESCE(previous_geotabId, '') FROM events",
    ):
        row = shown[int(str(event[0]))]
        assert (*event[1:],) == (
            int(row["fusebillId"]),
            *(row[f] for f in fields[1:]),
            row["previous_geotabId"],
        )

    assert batch_latch("run", source, "--out", out) == 1  # nothing left to send
    assert select(out, "SELECT count(*) FROM events") == [(3,)]

    # Each valid pair once, by its own outcome: row 4 is a duplicate, a row's status only.
    statuses = {int(r["row"]): r["status"] for r in report(out / "results.csv")}
    assert statuses == {2: "success", 3: "success", 4: "duplicate", 5: "not_found", 6: "invalid"}
    assert select(out, "SELECT fusebillId, geotabId, status, row FROM pairs ORDER BY row") == [
        (1000001, "A1", "success", 2),
        (1000002, "A2", "success", 3),
        (42, "X", "not_found", 5),
    ]
    assert select(out, "SELECT fusebillId, before, holds, state FROM customers") == [
        (1000001, None, "A1", "latched"),
        (1000002, None, "A2", "latched"),
    ]
    runs = select(out, "SELECT run_id, kind, ended_at IS NOT NULL, exit_code, requests FROM runs")
    assert [r[1:4] for r in runs] == [("dry_run", 1, 1), ("run", 1, 1), ("run", 1, 1)]
    assert runs[0][4] == 0 and runs[2][4] == 0  # the dry run and the re-run sent nothing
    for run_id, *_, requests in runs:
        summary = json.loads((out / "runs" / str(run_id) / "summary.json").read_text())
        assert requests == summary["requests"]


def test_a_real_undo_makes_every_latch_undone_and_its_customers_restored(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    out = tmp_path / "out"
    assert batch_latch("run", sheet(tmp_path), "--out", out) == 1

    assert batch_latch("undo", out) == 0

    assert select(out, "SELECT status, count(*) FROM pairs GROUP BY status ORDER BY status") == [
        ("not_found", 1),
        ("undone", 2),
    ]
    assert select(out, "SELECT state, count(*) FROM customers GROUP BY state") == [("restored", 2)]
    assert select(out, "SELECT kind FROM runs") == [("run",), ("undo",)]
    assert sandbox.geotab_id_of(1000001) is None
