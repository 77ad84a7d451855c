"""``status``: the job at a glance from its run folders alone: latest outcome per row, counts,
the runs, requests per UTC day, what is left and how long it takes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from batch_latch import cli
from batch_latch.commands import status
from batch_latch.errors import JobFolderError, NotAJob
from batch_latch.jobfolder import outcomes
from batch_latch.jobfolder.history import RUNS
from batch_latch.settings import Settings

#: The summary.json keys every test summary here carries without caring about them.
FULL: dict[str, Any] = {
    "requests": 0,
    "exit_code": 0,
    "stop_reason": None,
    "host": "desk",
    "dry_run": False,
    "counts": {},
    "finished_at": "",
    "reads": 0,
    "writes": 0,
    "changes": {},
    "input_sha256": "",
    "version": "test",
}


def run_folder(
    out: Path,
    name: str,
    kind: str,
    rows: list[int],
    statuses: list[str],
    **summary: Any,
) -> Path:
    folder = out / RUNS / name
    folder.mkdir(parents=True)
    data = {
        "input": f"/data/{kind}.csv",
        "kind": kind,
        "rows": len(rows),
        "requests": 0,
        "started_at": name[:16],
        "exit_code": 0,
        "stop_reason": None,
        "user": "ops",
        "host": "desk",
        "dry_run": kind != "run",
        "counts": {},
        "finished_at": name[:16],
        "reads": 0,
        "writes": 0,
        "changes": {},
        "input_sha256": "",
        "version": "test",
        **summary,
    }
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    outcomes.write_outcomes(
        folder,
        pa.array(rows, pa.int64()),
        pa.array(statuses, pa.string()).dictionary_encode(),
    )
    return folder


def job(tmp_path: Path) -> Path:
    out = tmp_path / "job"
    run_folder(
        out,
        "20260301T100000Z-plan",
        "plan",
        [2, 3, 4, 5],
        ["valid", "valid", "valid", "invalid"],
        requests=3,
        requests_by_day={"2026-03-01": 3},
    )
    run_folder(
        out,
        "20260301T110000Z-run",
        "run",
        [2, 3, 4, 5],
        ["success", "failed", "pending", "invalid"],
        requests=10,
        requests_by_day={"2026-03-01": 10},
        exit_code=3,
        stop_reason="max_requests",
        rate=5.0,
    )
    # A fix run fed back failed.csv: it keeps the sheet's row numbers.
    run_folder(
        out,
        "20260302T090000Z-run",
        "run",
        [3],
        ["success"],
        requests=2,
        requests_by_day={"2026-03-01": 1, "2026-03-02": 1},
        rate=5.0,
    )
    return out


def test_collect_takes_each_rows_latest_outcome_over_the_runs(tmp_path: Path) -> None:
    got = status.collect(job(tmp_path))
    assert got.rows == 4
    assert {k: v for k, v in got.counts.items() if v} == {
        "success": 2,
        "pending": 1,
        "invalid": 1,
    }
    assert [r.kind for r in got.runs] == ["plan", "run", "run"]
    assert [r.requests for r in got.runs] == [3, 10, 2]
    assert got.runs[1].stop_reason == "max_requests" and got.runs[1].exit_code == 3
    assert (got.runs[0].user, got.runs[0].host, got.runs[0].input) == ("ops", "desk", "plan.csv")
    assert got.requests_by_day == {"2026-03-01": 14, "2026-03-02": 1}
    assert (got.left_rows, got.left_requests) == (1, 2)  # a read and a write
    assert "at --rate 5" in got.estimate


def test_a_job_with_only_a_plan_counts_the_plan(tmp_path: Path) -> None:
    out = tmp_path / "job"
    run_folder(out, "20260301T100000Z-plan", "plan", [2, 3, 4], ["valid", "valid", "not_found"])
    got = status.collect(out)
    assert got.counts["valid"] == 2 and got.counts["not_found"] == 1
    assert got.left_rows == 2


def test_nothing_left(tmp_path: Path) -> None:
    out = tmp_path / "job"
    run_folder(out, "20260301T110000Z-run", "run", [2, 3], ["success", "duplicate"])
    got = status.collect(out)
    assert (got.left_rows, got.left_requests, got.estimate) == (0, 0, "nothing left to send")


def pending_job(tmp_path: Path, rows: int, **summary: Any) -> Path:
    """A job whose one --no-read run at --rate 10 left ``rows`` rows pending, on an account
    of 50 requests a minute and 5,000 a day."""
    out = tmp_path / "job"
    numbers = list(range(2, rows + 2))
    run_folder(
        out,
        "20260301T110000Z-run",
        "run",
        numbers,
        ["pending"] * rows,
        rate=10.0,
        read_first=False,
        account_limits={"minute": 50, "day": 5000},
        **summary,
    )
    return out


def test_the_estimate_uses_the_accounts_daily_limit_in_days(tmp_path: Path) -> None:
    got = status.collect(pending_job(tmp_path, 12_000))
    assert got.left_requests == 12_000  # --no-read: one request a row
    assert "days" in got.estimate and "5,000 a day" in got.estimate


@pytest.mark.parametrize(
    ("reserve", "words"),
    [
        ("10%", "about 2.0 days at this account's limits (50 a minute, 5,000 a day less 500"),
        ("0", "about 1.1 days at this account's limits (50 a minute, 5,000 a day)"),
    ],
)
def test_the_estimate_keeps_the_runs_quota_reserve(
    tmp_path: Path, reserve: str, words: str
) -> None:
    got = status.collect(pending_job(tmp_path, 10_000, quota_reserve=reserve))
    # 10,000 requests: with 4,500 a day for this tool the last 1,000 go out on the third
    # day; with all 5,000, the last 5,000 on the second (100 min at 50 a minute).
    assert got.estimate.startswith(words), got.estimate


def test_a_folder_still_running_is_skipped(tmp_path: Path) -> None:
    out = job(tmp_path)
    (out / RUNS / "20260303T000000Z-run").mkdir()  # no summary.json yet
    assert len(status.collect(out).runs) == 3


def test_not_a_job_is_an_exit_2_error(tmp_path: Path) -> None:
    with pytest.raises(NotAJob) as caught:
        status.collect(tmp_path)
    assert caught.value.exit_code == 2
    assert "not a batch-latch job folder" in str(caught.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"rows": 3}'])
def test_a_damaged_summary_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    out = job(tmp_path)
    damaged = out / RUNS / "20260301T110000Z-run" / "summary.json"
    damaged.write_text(text, encoding="utf-8")
    with pytest.raises(NotAJob) as caught:
        status.collect(out)
    assert caught.value.exit_code == 2
    assert str(damaged) in str(caught.value) and "damaged" in str(caught.value)


def test_a_damaged_outcomes_file_is_an_exit_2_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = job(tmp_path)
    damaged = out / RUNS / "20260301T110000Z-run" / "outcomes.arrow"
    damaged.write_bytes(b"not arrow at all")
    with pytest.raises(JobFolderError) as caught:
        status.collect(out)
    assert caught.value.exit_code == 2
    assert str(damaged) in str(caught.value) and "damaged" in str(caught.value)
    # Through the CLI: one line, no traceback.
    assert cli.main(["status", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(damaged) in err and "Traceback" not in err


def test_a_summary_with_a_wrong_field_type_is_damaged_too(tmp_path: Path) -> None:
    out = job(tmp_path)
    damaged = out / RUNS / "20260301T110000Z-run" / "summary.json"
    damaged.write_text('{"kind": "run", "rows": "many"}', encoding="utf-8")
    with pytest.raises(NotAJob):
        status.collect(out)


def test_show_prints_the_job_and_json_round_trips(tmp_path: Path) -> None:
    out = job(tmp_path)
    text = io.StringIO()
    assert status.show(Settings(out=out), text) == 0
    shown = text.getvalue()
    assert "4 rows" in shown and "Runs (3):" in shown
    assert "2026-03-02  1" in shown
    assert "Left: 1 row, about 2 requests" in shown
    as_json = io.StringIO()
    assert status.show(Settings(out=out, json=True), as_json) == 0
    data = json.loads(as_json.getvalue())
    assert data["rows"] == 4 and data["counts"]["success"] == 2
    assert data["requests_by_day"] == {"2026-03-01": 14, "2026-03-02": 1}
    assert len(data["runs"]) == 3


def test_write_outcomes_takes_plain_and_dictionary_columns(tmp_path: Path) -> None:
    for i, column in enumerate(
        [pa.array(["success", "failed"]), pa.array(["success", "failed"]).dictionary_encode()]
    ):
        folder = tmp_path / str(i)
        folder.mkdir()
        outcomes.write_outcomes(folder, pa.array([2, 3], pa.int64()), column)
        data = {**FULL, "kind": "run", "input": "x.csv", "rows": 2, "started_at": "", "user": ""}
        (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path
    (out / RUNS).mkdir()
    for i in range(2):
        (out / str(i)).rename(out / RUNS / f"2026030{i + 1}T000000Z-run")
    got = status.collect(out)
    assert got.counts["success"] == 1 and got.counts["failed"] == 1 and got.rows == 2


def test_each_pairs_last_outcome_among_customers_with_several_pairs() -> None:
    fids = np.array([5, 3, 5, 5, 7, -1, -1], np.int64)
    gids = pa.chunked_array([["A", "B", "B", "A", "C", "x", "x"]])
    # (5, A) last at 3, (3, B) at 1, (5, B) at 2, (7, C) at 4, the invalid text's pair at 6.
    assert status._last_of_each_pair(fids, gids).tolist() == [1, 2, 3, 4, 6]
    assert status._last_of_each_pair(np.array([2, 1], np.int64), gids[:2]).tolist() == [0, 1]
