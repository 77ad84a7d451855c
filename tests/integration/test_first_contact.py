"""First contact with an API that does not answer (contract v4, "A refused connection before
any answer is a stop"): a connect timeout on the first request, after its tries, is a
configuration problem, not the rows' failure — exit 3, rows pending, one line naming the
host and port and FUSEBILL_BASE_URL, the job left unbound."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunCli, write_csv


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port whose listen queue is full and never accepted from: the handshake
    of every new connection is dropped, so a client's connect times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # it waits in the queue
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for s in [*fillers, server]:
        s.close()


@pytest.mark.parametrize("read_batch", ["1", "100"])
def test_a_connect_timeout_before_any_answer_stops_naming_host_and_port(
    tmp_path: Path, run_cli: RunCli, unanswering_port: int, read_batch: str
) -> None:
    source = write_csv(tmp_path / "in.csv", [(1_000_001 + i, f"G{i}") for i in range(3)])
    url = f"http://127.0.0.1:{unanswering_port}/v1"

    run = run_cli(
        source, url, "--timeout", "0.5", "--max-attempts", "2", "--read-batch", read_batch
    )

    assert run.returncode == 3, run.stderr
    assert Counter(r["status"] for r in run.results()) == {"pending": 3}
    line = next(x for x in run.stderr.splitlines() if "could not connect" in x)
    assert f"127.0.0.1:{unanswering_port}" in line and "FUSEBILL_BASE_URL" in line
    db = sqlite3.connect(run.out / "job.db")
    try:  # unbound: no answer in Fusebill's format ever came from it
        assert db.execute("SELECT count(*) FROM log").fetchone()[0] == 0
    finally:
        db.close()
