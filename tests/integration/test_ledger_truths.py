"""v4 "One ledger": the truths of ``OUT/job.db`` through the real CLI against the sandbox.

- A write that may have landed stays possibly landed (``customers.state`` ``unknown``)
  until a read settles it, whatever the row's outcome in that command; ``undo`` reads it and
  puts it back. Here the latch lands in the sandbox, and its answer is a malformed chunked
  body, or the connection drops, and every read-back fails.
- A write that was never sent (a stop at ``--max-requests``, SIGTERM, before it left) is
  never ``writing`` and never ``unknown``.
- After ``kill -9``, ``status`` says the command was killed and counts the rows it had not
  settled as left.
- A report fed back from the job folder without ``--out`` belongs to that job.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from batch_latch.sandbox import Sandbox
from tests import netdoubles as nd
from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    KEY,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    cli_command,
    cli_env,
    invoke,
    job_db,
    killed_when,
    known_rows,
    latch_requests,
    write_csv,
)

FID = 1_000_001
#: Headers of the sandbox's answers the front passes on (the rate limits among them).
_HOP = {"content-length", "transfer-encoding", "connection", "date", "server", "keep-alive"}


class Front:
    """A loopback server in front of the sandbox. Every request goes on to the sandbox (so a
    latch really lands there); while ``broken``, a latch's answer is replaced by ``fault``
    (a malformed chunked body, or the connection closed with no answer) and, once a latch
    has landed, every read answers 503: the tool cannot learn what the customer holds."""

    def __init__(self, sandbox: Sandbox, fault: str) -> None:
        target = urlsplit(sandbox.base_url)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.fault = fault
        self.broken = True
        self.landed = 0
        self.refused_reads = 0
        self._lock = threading.Lock()

    def respond(self, exchange: nd.Exchange) -> None:
        seen = exchange.seen
        latch = seen.method == "POST" and seen.path.endswith("/Geotab/LatchCustomer")
        with self._lock:
            refuse_read = self.broken and self.landed > 0 and seen.method == "GET"
            if refuse_read:
                self.refused_reads += 1
        if refuse_read:
            exchange.send_json(503, {"Message": "Service Unavailable"})
            return
        status, headers, body = self._forward(seen)
        if not (latch and self.broken and status == 200):
            exchange.send(status, body, headers)
            return
        with self._lock:
            self.landed += 1
        exchange.handler.close_connection = True
        if self.fault == "chunked":
            head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
            exchange.head(200, {**headers, **head})
            exchange.write(b'9\r\n{"id": 10\r\nzz-not-a-chunk-size\r\n')
        # "dropped": the connection closes with no answer at all.

    def _forward(self, seen: nd.Seen) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=nd.SERVER_WAIT)
        try:
            wanted = ("authorization", "content-type", "accept")
            headers = {k: v for k, v in seen.headers.items() if k in wanted}
            connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP}
            return answer.status, kept, body
        finally:
            connection.close()


def _status(status_cli: StatusCli, out: Path) -> dict[str, object]:
    done = status_cli(out, "--json")
    assert done.returncode == 0, done.stderr
    job: dict[str, object] = json.loads(done.stdout)
    return job


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["chunked", "dropped"])
def test_a_write_that_may_have_landed_stays_unknown_until_a_read_and_undo_puts_it_back(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
    fault: str,
) -> None:
    sandbox = sandbox_factory(preset={FID: "GT-OLD"})
    front = Front(sandbox, fault)
    source = write_csv(tmp_path / "in.csv", [(FID, "GT-NEW")])
    out = tmp_path / "out"
    with nd.Loopback(front.respond) as server:
        base = f"{server.url}/v1"
        run = run_cli(source, base, *FAST, "--allow-relatch", "--max-attempts", "2")
        assert front.landed >= 1 and front.refused_reads >= 1, run.stderr
        assert sandbox.geotab_id_of(FID) == "GT-NEW"  # it landed; the tool cannot know it
        (row,) = run.results()
        # Never success (nothing proved it), its answer never the final word: read back.
        assert row["status"] == "failed", row
        assert "read-back could not confirm" in row["message"], row
        assert run.returncode == 1, run.stderr

        # The ledger: possibly landed, with what it held before the job's first change.
        assert job_db(out, "SELECT fusebillId, before, holds, state FROM customers") == [
            (FID, "GT-OLD", None, "unknown")
        ]
        job = _status(status_cli, out)
        assert job["in_fusebill"] == {"latched": 0, "restored": 0, "unknown": 1}, job

        front.broken = False  # the network is well again: undo reads it and puts it back
        undone = undo_cli(base, *FAST, out=out)
    assert undone.returncode == 0, undone.stderr
    (back,) = undone.results()
    assert (back["status"], back["change"]) == ("success", "undo"), back
    assert sandbox.geotab_id_of(FID) == "GT-OLD"
    assert job_db(out, "SELECT fusebillId, before, holds, state FROM customers") == [
        (FID, "GT-OLD", "GT-OLD", "restored")
    ]
    assert job_db(out, "SELECT fusebillId, geotabId, status FROM pairs") == [
        (FID, "GT-NEW", "undone")  # the read found it landed: this job's latch, put back
    ]
    job = _status(status_cli, out)
    assert job["in_fusebill"] == {"latched": 0, "restored": 1, "unknown": 0}, job


@pytest.mark.slow
def test_a_read_settles_a_possibly_landed_write_as_the_jobs_change(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    front = Front(sandbox, "chunked")
    source = write_csv(tmp_path / "in.csv", [(FID, "GT-NEW")])
    out = tmp_path / "out"
    with nd.Loopback(front.respond) as server:
        base = f"{server.url}/v1"
        first = run_cli(source, base, *FAST, "--max-attempts", "2")
        assert first.by_fid()[FID]["status"] != "success", first.stderr
        assert job_db(out, "SELECT state FROM customers") == [("unknown",)]
        front.broken = False
        again = run_cli(source, base, *FAST)
    assert again.returncode == 0, again.stderr
    row = again.by_fid()[FID]
    assert (row["status"], row["change"], row["previous_geotabId"]) == ("success", "new", "")
    assert len(latch_requests(sandbox, FID)) == front.landed  # found by its read, not re-sent
    assert job_db(out, "SELECT fusebillId, before, holds, state FROM customers") == [
        (FID, None, "GT-NEW", "latched")
    ]
    assert job_db(out, "SELECT status FROM pairs") == [("success",)]
    job = _status(status_cli, out)
    assert job["in_fusebill"] == {"latched": 1, "restored": 0, "unknown": 0}, job


def test_a_stop_at_max_requests_leaves_no_write_that_never_left_writing_or_unknown(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    rows = known_rows(6)
    source = write_csv(tmp_path / "in.csv", rows)
    # One list read and one write: four workers had the other five writes ready to go.
    run = run_cli(source, sandbox.base_url, "--rate", "200", "--workers", "4", "--max-requests", 2)
    assert run.returncode == 3, run.stderr
    assert len(latch_requests(sandbox)) == 1
    out = run.out
    assert job_db(out, "SELECT count(*) FROM events WHERE status = 'writing'") == [(0,)]
    assert job_db(out, "SELECT status, count(*) FROM pairs GROUP BY status ORDER BY status") == [
        ("pending", 5),
        ("success", 1),
    ]
    assert job_db(out, "SELECT state, count(*) FROM customers GROUP BY state") == [("latched", 1)]
    job = _status(status_cli, out)
    assert job["in_fusebill"] == {"latched": 1, "restored": 0, "unknown": 0}, job
    assert job["left_rows"] == 5


@pytest.mark.slow
def test_sigterm_leaves_no_write_writing_or_unknown(
    tmp_path: Path, sandbox_factory: SandboxFactory, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory(latency_ms=150)
    total = 40
    source = write_csv(tmp_path / "in.csv", known_rows(total))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("run", source, "--out", out, "--no-progress", "--rate", "50", "--workers", 4),
        env=cli_env(sandbox.base_url),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(latch_requests(sandbox)) >= 6, deadline=60, what="some latches")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    latched = len(latch_requests(sandbox))
    assert latched < total, "the run finished before the signal"
    # The orderly stop: writes in flight got their answers; those not sent were taken back.
    assert job_db(out, "SELECT count(*) FROM events WHERE status = 'writing'") == [(0,)]
    assert job_db(out, "SELECT count(*) FROM pairs WHERE status = 'success'") == [(latched,)]
    job = _status(status_cli, out)
    assert job["in_fusebill"] == {"latched": latched, "restored": 0, "unknown": 0}, job
    assert job["left_rows"] == total - latched


def test_a_dry_run_is_not_the_jobs_newest_input_for_what_is_left(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [*known_rows(6), ("bad", "X")])
    stopped = run_cli(source, sandbox.base_url, *FAST, "--max-requests", 2)
    assert stopped.returncode == 3, stopped.stderr
    job = _status(status_cli, stopped.out)
    assert (job["left_rows"], job["counts"]["invalid"]) == (5, 1), job  # type: ignore[index]
    other = write_csv(tmp_path / "other.csv", [*known_rows(3, start=2_000_000), ("x", "Y")])
    dry = run_cli(other, sandbox.base_url, "--dry-run", key=None)
    assert dry.returncode == 1, dry.stderr

    # v4: left_rows counts the sheet of the job's latest run or plan, not a dry run's.
    job = _status(status_cli, stopped.out)
    assert (job["left_rows"], job["counts"]["invalid"]) == (5, 1), job  # type: ignore[index]


@pytest.mark.slow
def test_status_after_kill_9_says_the_command_was_killed_and_counts_what_is_left(
    tmp_path: Path, sandbox_factory: SandboxFactory, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory(latency_ms=150)
    total, workers = 40, 2
    source = write_csv(tmp_path / "in.csv", known_rows(total))
    out = tmp_path / "out"
    code = killed_when(
        ["run", source, "--out", out, "--no-progress", "--rate", 50, "--workers", workers],
        cwd=tmp_path,
        base_url=sandbox.base_url,
        when=lambda: len(latch_requests(sandbox)) >= 6,
        what="some latches",
    )
    assert code == -signal.SIGKILL
    latched = len(latch_requests(sandbox))
    assert latched < total, "the run finished before it was killed"

    shown = status_cli(out)
    job = _status(status_cli, out)
    assert shown.returncode == 0, shown.stderr
    (run_id,) = [r for (r,) in job_db(out, "SELECT run_id FROM runs")]
    assert f"Command {run_id} never recorded its end: it was killed" in shown.stdout, shown.stdout
    assert job["running"] is None
    assert job_db(out, "SELECT ended_at, exit_code FROM runs") == [(None, None)]
    ((success,),) = job_db(out, "SELECT count(*) FROM pairs WHERE status = 'success'")
    assert 0 < success <= latched
    assert job["left_rows"] == total - success  # rows it had not settled are left
    assert f"Left: {total - success:,} rows" in shown.stdout, shown.stdout
    unknown = job["in_fusebill"]["unknown"]  # type: ignore[index]
    # Every write that reached Fusebill unanswered is unknown; at most --workers are.
    assert latched - success <= unknown <= workers, job


def test_a_report_fed_back_from_the_job_folder_without_out_belongs_to_that_job(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "mapping.csv", [*known_rows(2), ("1000O02", "G00002")])
    out = tmp_path / "mapping-latch"
    first = run_cli(source, sandbox.base_url, *FAST, out=out)
    assert first.returncode == 1, first.stderr
    failed = out / "failed.csv"
    text = failed.read_text(encoding="utf-8-sig").replace("1000O02", "1000002")
    failed.write_text(text, encoding="utf-8-sig")

    fed = invoke(
        ["run", failed, "--no-progress", *FAST], cwd=tmp_path, out=out, base_url=sandbox.base_url
    )

    assert fed.returncode == 0, fed.stderr
    assert not (out / "failed-latch").exists()
    assert [r["status"] for r in fed.results()] == ["success"]
    job = _status(status_cli, out)
    counts = {k: v for k, v in job["counts"].items() if v}  # type: ignore[attr-defined]
    assert counts == {"success": 3}, job
    assert len(job_db(out, "SELECT run_id FROM runs")) == 2
    assert KEY not in fed.stderr
