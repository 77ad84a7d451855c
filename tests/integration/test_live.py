"""Live runs through the CLI against the sandbox over loopback: every response class.

v2: every new row costs a read (``GET /customers/{id}``) and a write; ``summary.json`` counts
``requests``, ``reads`` and ``writes``; ``attempts`` counts latch requests only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FAST,
    KEY,
    RunCli,
    SandboxFactory,
    assert_key_nowhere,
    known_rows,
    latch_requests,
    read_requests,
    summary_counts,
    write_csv,
)


def test_success_latches_every_row_and_keeps_leading_zeros(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    rows = [*known_rows(5), (12717595, "0909909")]
    source = write_csv(tmp_path / "in.csv", rows)

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 0, run.stderr
    results = run.results()
    assert [r["status"] for r in results] == ["success"] * 6
    assert all(r["attempts"] == "1" and r["http_status"] == "200" for r in results)
    assert [r["change"] for r in results] == ["new"] * 6
    assert [r["previous_geotabId"] for r in results] == [""] * 6
    assert sandbox.geotab_id_of(12717595) == "0909909"
    assert sandbox.geotab_id_of(1_000_004) == "G00004"
    summary = run.summary()
    # One list request read the six customers (v2: a read each).
    assert (summary["requests"], summary["reads"], summary["writes"]) == (7, 1, 6)
    assert (summary["customers_read"], summary["read_batch"]) == (6, 100)
    assert summary["exit_code"] == 0
    assert summary["kind"] == "run"
    assert summary["changes"].get("new") == 6
    assert len(latch_requests(sandbox)) == 6
    assert len(read_requests(sandbox)) == 1
    # Each customer was read before it was written.
    for fid, _ in rows:
        read, latch = read_requests(sandbox, fid)[0], latch_requests(sandbox, fid)[0]
        assert read.at <= latch.at
    assert run.failed() == []


def test_not_found_carries_fusebills_message(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(1_000_001, "A"), (123, "B")])

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1
    row = run.by_row()[3]
    assert row["status"] == "not_found"
    assert row["http_status"] == "404"
    assert row["change"] == ""
    assert "Customer with id 123 not found." in row["message"]
    assert [r["row"] for r in run.failed()] == ["3"]
    # The read found it missing: nothing was written for it.
    assert latch_requests(sandbox, 123) == []
    # In the list read (which leaves it out), then read alone: only that 404 counts.
    assert [r.is_list for r in read_requests(sandbox, 123)] == [True, False]


def test_other_4xx_fails_at_once_with_the_body_message(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(force_status={1_000_002: 400})
    source = write_csv(tmp_path / "in.csv", [(1_000_001, "A"), (1_000_002, "B")])

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1
    row = run.by_row()[3]
    assert (row["status"], row["http_status"], row["attempts"]) == ("failed", "400", "1")
    assert "not eligible" in row["message"]
    assert row["error_key"] == "http_400"
    assert len(latch_requests(sandbox, 1_000_002)) == 1


def test_a_different_geotab_id_in_the_answer_is_a_failure(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(mismatch_ids=frozenset({1_000_003}))
    source = write_csv(tmp_path / "in.csv", [(1_000_003, "MINE")])

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1
    row = run.by_row()[2]
    assert row["status"] == "failed"
    assert "MINE" in row["message"] and row["error_key"] == "geotab_id_mismatch"
    assert len(latch_requests(sandbox, 1_000_003)) == 1


def test_wrong_key_stops_at_once_and_leaves_rows_pending(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(latency_ms=20)
    source = write_csv(tmp_path / "in.csv", known_rows(40))

    run = run_cli(source, sandbox.base_url, "--workers", "4", "--rate", "100", key="wrong-key")

    assert run.returncode == 3
    assert "rejected the API key" in run.stderr
    assert len(sandbox.requests_log()) <= 4
    assert latch_requests(sandbox) == []  # the reads were refused: nothing written
    statuses = Counter(r["status"] for r in run.results())
    assert statuses == {"pending": 40}
    assert run.summary()["exit_code"] == 3
    assert run.summary()["stop_reason"] == "key_rejected"
    assert len(run.failed()) == 40


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", [True, False])
def test_429_pauses_everyone_and_does_not_use_up_attempts(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, retry_after: bool
) -> None:
    # A 3 req/s limit against a tool sending at 30 req/s: 429s are certain. One-by-one reads
    # (--read-batch 1): ten requests, not one list read and five latches, keep the pressure.
    sandbox = sandbox_factory(rate_limit=3.0, retry_after=retry_after, reset_format="epoch")
    source = write_csv(tmp_path / "in.csv", known_rows(5))

    run = run_cli(
        source,
        sandbox.base_url,
        *("--rate", "30", "--workers", "4", "--max-attempts", "1", "--read-batch", "1"),
    )

    assert run.returncode == 0, run.stderr
    assert {r["status"] for r in run.results()} == {"success"}
    answered = Counter(r.status for r in sandbox.requests_log())
    assert answered[429] > 0
    assert answered[200] == 10  # a read and a write per row
    latched = Counter(r.status for r in latch_requests(sandbox))
    assert latched[200] == 5
    # attempts counts the latch requests, the 429s to them included
    assert sum(int(r["attempts"]) for r in run.results()) == latched[200] + latched[429]


@pytest.mark.slow
def test_remaining_minute_zero_pauses_until_reset_without_429s(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    # testdrive: 10 requests a "minute", here a 1-second window; 12 rows read one by one
    # (--read-batch 1) are 24 requests, so the run crosses the window's end twice.
    sandbox = sandbox_factory(profile="testdrive", minute_seconds=1.0)
    source = write_csv(tmp_path / "in.csv", known_rows(12))

    run = run_cli(source, sandbox.base_url, "--rate", "100", "--workers", "1", "--read-batch", "1")

    assert run.returncode == 0, run.stderr
    statuses = Counter(r.status for r in sandbox.requests_log())
    assert statuses == {200: 24}


@pytest.mark.slow
def test_random_5xx_and_dropped_connections_end_in_success(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(fail_rate=0.2, drop_rate=0.15, seed=7)
    source = write_csv(tmp_path / "in.csv", known_rows(30))

    run = run_cli(
        source, sandbox.base_url, "--rate", "200", "--workers", "4", "--max-attempts", "8"
    )

    assert run.returncode == 0, run.stderr + run.stdout
    assert {r["status"] for r in run.results()} == {"success"}
    log = sandbox.requests_log()
    assert any(r.status is None for r in log), "no connection was dropped"
    assert any(r.status is not None and r.status >= 500 for r in log), "no 5xx was served"
    for fid, gid in known_rows(30):
        assert sandbox.geotab_id_of(fid) == gid


@pytest.mark.slow
def test_a_timeout_on_the_first_attempt_is_retried(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    # A 1 s timeout, not 0.3 s: an unstalled answer on a loaded machine must not time out
    # too; the stall (5 s) is still far past it.
    sandbox = sandbox_factory(stall_first_ms=5000)
    source = write_csv(tmp_path / "in.csv", known_rows(3))

    run = run_cli(source, sandbox.base_url, "--timeout", "1", *FAST)

    assert run.returncode == 0, run.stderr
    results = run.results()
    assert {r["status"] for r in results} == {"success"}
    # The stalled first attempt landed: the repeat is either answered or read back.
    for row in results:
        assert int(row["attempts"]) >= 2, row


@pytest.mark.slow
@pytest.mark.parametrize("relatch_status", [400, 409])
def test_an_ambiguous_attempt_is_resolved_by_read_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, relatch_status: int
) -> None:
    # The first attempt lands but its answer is late; the repeat is refused as "already
    # latched"; the tool reads the customer back and finds the geotabId it sent. One-by-one
    # reads (--read-batch 1), so each row's own read and read-back are counted.
    # The counts below hold only if no unstalled answer times out: 1 s, not 0.3 s, for a
    # loaded machine; the stall (5 s) is still far past it.
    sandbox = sandbox_factory(stall_first_ms=5000, relatch_status=relatch_status)
    source = write_csv(tmp_path / "in.csv", known_rows(2))

    run = run_cli(
        source,
        sandbox.base_url,
        *("--timeout", "1", "--max-attempts", "2", "--read-batch", "1", *FAST),
    )

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert row["status"] == "success"
        assert row["change"] == "new"
        assert "read-back" in row["message"]
    reads = read_requests(sandbox)
    assert len(reads) == 4  # a read first, a read-back last, per row
    # 2 x (read + timed-out latch + refused repeat + read-back)
    assert run.summary()["requests"] == 8
    assert (run.summary()["reads"], run.summary()["writes"]) == (4, 4)


@pytest.mark.slow
def test_an_outage_stops_the_run_with_rows_pending(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(fail_rate=1.0, seed=1)
    source = write_csv(tmp_path / "in.csv", known_rows(30))

    # One-by-one reads (--read-batch 1): a failed request per read, so the streak of 20
    # builds across the rows. (One list read of the 30 counts once a try in the streak: it
    # would give up after --max-attempts and fail the rows as unreadable, never a stop.)
    run = run_cli(source, sandbox.base_url, "--rate", "200", "--workers", "8", "--read-batch", "1")

    assert run.returncode == 3
    assert "API looks down" in run.stderr
    assert Counter(r["status"] for r in run.results()) == {"pending": 30}
    assert 20 <= len(sandbox.requests_log()) <= 20 + 8
    assert latch_requests(sandbox) == []  # no read ever got through: nothing written blind
    assert run.summary()["stop_reason"] == "api_down"


@pytest.mark.slow
def test_the_key_never_appears_in_any_output(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    """Drive every error path, then grep stdout, stderr and every file written."""
    bad = {1_000_005: 400, 1_000_006: 403}
    sandbox = sandbox_factory(
        fail_rate=0.2,
        drop_rate=0.1,
        seed=3,
        stall_first_ms=800,
        relatch_status=409,
        mismatch_ids=frozenset({1_000_007}),
        force_status=bad,
        preset={1_000_008: "HELD"},
    )
    rows = [*known_rows(10), (42, "nobody"), ("not-a-number", "x")]
    source = write_csv(tmp_path / "in.csv", rows)
    fast = ("--timeout", "0.3", "--max-attempts", "3", *FAST)
    runs = [
        run_cli(source, sandbox.base_url, *fast, out=tmp_path / "a"),
        run_cli(source, sandbox.base_url, *FAST, out=tmp_path / "b", key=KEY + "x"),
        run_cli(source, "http://example.com/v1", out=tmp_path / "c"),
        run_cli(tmp_path / "missing.csv", sandbox.base_url, out=tmp_path / "d"),
        run_cli(source, "http://127.0.0.1:9/v1", "--max-attempts", "1", out=tmp_path / "e"),
    ]
    # The last: a refused connection before any answer is a stop (v4), whatever the size.
    assert [r.returncode for r in runs] == [3, 3, 2, 2, 3]
    for run in runs:
        assert "Traceback" not in run.stderr
    assert_key_nowhere(tmp_path, *(r.stdout + r.stderr for r in runs))


@pytest.mark.slow
def test_a_spent_daily_quota_stops_the_run_and_says_when_it_resets(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    # 5 requests a day: one list read of the 12, then four writes; the fourth write's answer
    # shows the quota spent (v2, one read a row: two rows).
    sandbox = sandbox_factory(day_limit=5)
    source = write_csv(tmp_path / "in.csv", known_rows(12))

    first = run_cli(source, sandbox.base_url, "--rate", "100", "--workers", "1")

    assert first.returncode == 3
    assert "daily API quota" in first.stderr and "resets at" in first.stderr
    assert Counter(r["status"] for r in first.results()) == {"success": 4, "pending": 8}
    assert Counter(r.status for r in sandbox.requests_log()) == {200: 5}
    assert [r.is_list for r in sandbox.requests_log()] == [True] + [False] * 4
    assert first.summary()["stop_reason"] == "daily_quota"
    assert first.summary()["requests"] == 5

    # Next run the same day: the first answer is a 429 naming the daily limit.
    second = run_cli(source, sandbox.base_url, "--rate", "100", "--workers", "1")

    assert second.returncode == 3
    assert "daily API quota" in second.stderr
    assert summary_counts(second.summary()) == {"success": 4, "pending": 8}
    assert Counter(r.status for r in sandbox.requests_log()) == {200: 5, 429: 1}
