"""Re-runs, stops and crashes: a re-run of the same command picks up where things stood."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
from collections import Counter

import pytest

from tests.integration.conftest import (
    KEY,
    cli_command,
    cli_env,
    known_rows,
    latch_requests,
    wait_for,
    write_csv,
)

FAST = ("--rate", "200", "--workers", "4")


def test_rerun_sends_only_what_is_not_done(tmp_path, sandbox_factory, run_cli):
    sandbox = sandbox_factory(force_status={1_000_002: 400})
    rows = [(1_000_001, "A"), (1_000_002, "B"), (55, "C"), (1_000_004, "D")]
    source = write_csv(tmp_path / "in.csv", rows)

    first = run_cli(source, sandbox.base_url, *FAST)
    assert first.returncode == 1
    assert [r["status"] for r in first.results()] == ["success", "failed", "not_found", "success"]

    second = run_cli(source, sandbox.base_url, *FAST)

    assert second.returncode == 1
    results = second.by_row()
    assert results[2]["status"] == "success" and "latched earlier" in results[2]["message"]
    assert results[2]["attempts"] == "0"
    assert results[4]["status"] == "not_found" and "earlier run" in results[4]["message"]
    assert results[3]["status"] == "failed" and results[3]["attempts"] == "1"
    # Only the failed row was sent again.
    counts = Counter(r.fusebill_id for r in latch_requests(sandbox))
    assert counts == {1_000_001: 1, 1_000_002: 2, 55: 1, 1_000_004: 1}
    assert second.summary()["requests"] == 1

    third = run_cli(source, sandbox.base_url, "--retry-not-found", *FAST)

    assert third.by_row()[4]["status"] == "not_found"
    assert third.by_row()[4]["attempts"] == "1"
    assert Counter(r.fusebill_id for r in latch_requests(sandbox))[55] == 2


def test_rerun_rules_hold_when_the_sheet_was_edited(tmp_path, sandbox_factory, run_cli):
    sandbox = sandbox_factory()
    first_rows = known_rows(6)
    run_cli(write_csv(tmp_path / "in.csv", first_rows), sandbox.base_url, *FAST)

    # Ops reorder the sheet, add a row, change one geotabId and add a note column.
    edited = [(fid, gid, "note") for fid, gid in reversed(first_rows[1:])]
    edited[0] = (edited[0][0], "CHANGED", "note")
    edited.append((1_000_100, "NEW", "note"))
    source = write_csv(tmp_path / "in.csv", edited, header=("Fusebill ID", "Geotab ID", "Notes"))

    second = run_cli(source, sandbox.base_url, *FAST)

    assert second.returncode == 0, second.stderr
    assert second.summary()["requests"] == 2  # the changed pair and the new row
    sent_again = [r for r in latch_requests(sandbox)][6:]
    assert sorted((r.fusebill_id, r.geotab_id) for r in sent_again) == sorted(
        [(edited[0][0], "CHANGED"), (1_000_100, "NEW")]
    )
    assert all(r["Notes"] == "note" for r in second.results())


def test_max_requests_stops_cleanly_and_the_next_run_finishes(tmp_path, sandbox_factory, run_cli):
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(10))

    first = run_cli(source, sandbox.base_url, "--max-requests", "4", "--workers", "1")

    assert first.returncode == 3
    assert "--max-requests" in first.stderr
    assert Counter(r["status"] for r in first.results()) == {"success": 4, "pending": 6}
    assert first.summary()["requests"] == 4
    assert len(latch_requests(sandbox)) == 4

    second = run_cli(source, sandbox.base_url, "--max-requests", "100", *FAST)

    assert second.returncode == 0
    assert len(latch_requests(sandbox)) == 10
    assert {r["status"] for r in second.results()} == {"success"}


def test_fresh_ignores_the_checkpoint(tmp_path, sandbox_factory, run_cli):
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(3))
    run_cli(source, sandbox.base_url, *FAST)

    again = run_cli(source, sandbox.base_url, "--fresh", *FAST)

    assert again.returncode == 0
    assert [r["attempts"] for r in again.results()] == ["1", "1", "1"]
    assert len(latch_requests(sandbox)) == 6
    assert list((tmp_path / "out").glob("checkpoint-*.csv.old")), "old checkpoint kept aside"


def test_a_checkpoint_from_another_api_is_refused(tmp_path, sandbox_factory, run_cli):
    one, two = sandbox_factory(), sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(2))
    run_cli(source, one.base_url, *FAST)

    other = run_cli(source, two.base_url, *FAST)

    assert other.returncode == 2
    assert "--fresh" in other.stderr and "Traceback" not in other.stderr
    assert latch_requests(two) == []


def test_ctrl_c_finishes_in_flight_requests_writes_reports_and_exits_130(tmp_path, sandbox_factory):
    sandbox = sandbox_factory(latency_ms=300)
    source = write_csv(tmp_path / "in.csv", known_rows(40))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("run", source, "--out", out, "--no-progress", "--rate", "10", "--workers", "2"),
        env=cli_env(sandbox.base_url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: len(sandbox.requests_log()) >= 3, what="the first requests")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 130
    sent = len(latch_requests(sandbox))
    counts = summary["counts"]
    assert counts["success"] == sent  # every request that was in flight finished and counts
    assert counts["pending"] == 40 - sent > 0


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """Kill -9 the CLI mid-run several times; re-run; every row ends success exactly once."""
    log = tmp_path / "sandbox.jsonl"
    server = subprocess.Popen(
        cli_command("sandbox", "--port", "0", "--latency-ms", "40", "--api-key", KEY, "--log", log),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        base_url = re.search(r"(http://\S+/v1)", line).group(1)  # type: ignore[union-attr]

        def latches() -> list[dict[str, object]]:
            if not log.exists():
                return []
            entries = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
            return [e for e in entries if e["method"] == "POST"]

        rows = known_rows(80)
        source = write_csv(tmp_path / "in.csv", rows)
        out = tmp_path / "out"
        workers = 4
        command = cli_command(
            "run", source, "--out", out, "--no-progress", "--rate", "100", "--workers", workers
        )
        rng = random.Random(20261127)
        kills = 0
        for _ in range(4):
            before = len(latches())
            proc = subprocess.Popen(
                command,
                env=cli_env(base_url),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            target = before + rng.randint(3, 12)
            wait_for(
                lambda t=target, p=proc: len(latches()) >= t or p.poll() is not None,
                what="traffic",
            )
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)

        final = subprocess.run(
            command,
            env=cli_env(base_url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert final.returncode == 0, final.stderr
        results = list(
            __import__("csv").DictReader((out / "results.csv").open(encoding="utf-8-sig"))
        )
        assert [int(r["row"]) for r in results] == list(range(2, 2 + len(rows)))
        assert {r["status"] for r in results} == {"success"}
        sent = Counter(int(e["fusebill_id"]) for e in latches())  # type: ignore[call-overload]
        assert set(sent) == {fid for fid, _ in rows}
        sent_twice = [fid for fid, n in sent.items() if n > 1]
        assert kills >= 3
        assert len(sent_twice) <= kills * workers, (kills, sent_twice)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
