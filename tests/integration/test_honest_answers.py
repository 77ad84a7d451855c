"""v2 honest answers on a real network: a 2xx proves itself or is read back. (Redirects, a
wrong URL, Retry-After storms and long pauses are in ``test_network_cli``.)"""

from __future__ import annotations

import contextlib
import json
import select
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import netdoubles as nd
from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    known_rows,
    latch_requests,
    read_requests,
    write_csv,
)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["html_200_rate", "empty_200_rate"])
def test_a_2xx_that_proves_nothing_is_not_success_and_is_sent_again(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, fault: str
) -> None:
    bad = sandbox_factory(**{fault: 1.0})
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)

    first = run_cli(source, bad.base_url, *FAST)

    assert first.returncode == 1, first.stderr
    for row in first.results():
        assert (row["status"], row["error_key"]) == ("failed", "unconfirmed"), row
        assert row["change"] == ""
    # One list read of the three, then per row a latch (a 200 that proves nothing) and a
    # read-back of that customer alone: 4 reads, 3 latches.
    assert len(read_requests(bad)) == 4
    assert len(latch_requests(bad)) == 3
    for fid, _ in rows:
        reads, latch = read_requests(bad, fid), latch_requests(bad, fid)[0]
        assert [r.is_list for r in reads] == [True, False]
        assert reads[0].at <= latch.at <= reads[1].at
    port = bad.port
    bad.stop()

    healthy = sandbox_factory(port=port)  # the same URL, now answering properly
    second = run_cli(source, healthy.base_url, *FAST)

    assert second.returncode == 0, second.stderr
    assert {r["status"] for r in second.results()} == {"success"}
    assert "earlier" not in second.results()[0]["message"]
    assert len(latch_requests(healthy)) == 3
    for fid, gid in rows:
        assert healthy.geotab_id_of(fid) == gid


@pytest.mark.slow
def test_a_latch_applied_then_answered_504_is_found_by_read_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(applied_then_504_rate=1.0)
    rows = known_rows(2)
    source = write_csv(tmp_path / "in.csv", rows)

    run = run_cli(source, sandbox.base_url, "--max-attempts", "2", *FAST)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["change"]) == ("success", "new"), row
        assert "read-back" in row["message"]
    for fid, gid in rows:
        assert sandbox.geotab_id_of(fid) == gid
    assert Counter(r.status for r in latch_requests(sandbox)) == {504: 4}


class InterimThenLate:
    """A Fusebill on loopback whose latch answers ``102 Processing`` at once and its final
    answer only once the client has sent something more on that connection (or gone, or
    :data:`LATE` seconds passed): the interim answer is all a client reads as final, and a
    client that reuses the connection reads the late answer as its next request's."""

    LATE = 3.0

    def __init__(self, holdings: dict[int, str | None]) -> None:
        self.holdings = dict(holdings)
        self.lock = threading.Lock()
        self.interim_on: set[tuple[str, int]] = set()  # connections that had a 102
        self.after_interim: list[nd.Seen] = []  # requests that came on such a connection

    def __call__(self, exchange: nd.Exchange) -> None:
        seen = exchange.seen
        with self.lock:
            if seen.peer in self.interim_on:
                self.after_interim.append(seen)
        if seen.method == "POST" and seen.path == "/v1/Geotab/LatchCustomer":
            sent = exchange.json()
            with self.lock:
                self.holdings[sent["fusebillId"]] = sent["geotabId"]
                self.interim_on.add(seen.peer)
            if not exchange.write(b"HTTP/1.1 102 Processing\r\n\r\n"):
                return
            # the late final answer, once the client has moved on (or hung up)
            select.select([exchange.handler.connection], [], [], self.LATE)
            with contextlib.suppress(OSError):
                exchange.send_json(200, {"id": sent["fusebillId"], "geotabId": sent["geotabId"]})
        elif seen.method == "GET" and seen.path.startswith("/v1/customers?"):
            query = parse_qs(urlsplit(seen.path).query)
            ids = sorted(int(i) for i in query["query"][0].removeprefix("id:").split(","))
            with self.lock:
                body = [{"id": i, "geotabId": self.holdings.get(i)} for i in ids]
            exchange.send_json(200, body, {"X-MaxPageIndex": "0", "X-CurrentPage": "0"})
        elif seen.method == "GET" and seen.path.startswith("/v1/customers/"):
            fid = int(seen.path.rsplit("/", 1)[1])
            with self.lock:
                exchange.send_json(200, {"id": fid, "geotabId": self.holdings.get(fid)})
        else:
            exchange.send_json(404, {"Message": "No HTTP resource was found"})


def test_a_connection_after_a_1xx_answer_is_never_reused(tmp_path: Path, run_cli: RunCli) -> None:
    """A 1xx as the final answer to a latch leaves the connection in an unknown state: the
    server's late final answer must not be read as the read-back's. Each read-back goes on
    a new connection, gets its own answer, and the row is settled by it."""
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)
    fusebill = InterimThenLate({fid: None for fid, _ in rows})

    with nd.Loopback(fusebill) as server:
        run = run_cli(source, f"{server.url}/v1", "--workers", "1", "--rate", "200")
        seen = list(server.seen)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["error_key"]) == ("success", ""), row
        assert "confirmed by read-back" in row["message"], row
    assert fusebill.after_interim == []  # nothing more was sent on a connection after a 102
    latches = {json.loads(s.body)["fusebillId"]: s for s in seen if s.method == "POST"}
    reads = {int(s.path.rsplit("/", 1)[1]): s for s in seen if s.path.startswith("/v1/customers/")}
    assert len(seen) == 7  # one list read, then per row one latch and one read-back
    for fid, _ in rows:  # each read-back on a new connection, not its latch's
        assert reads[fid].peer != latches[fid].peer
