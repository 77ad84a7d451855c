"""FusebillClient on real loopback sockets: TLS with a CA made here, a CONNECT proxy, servers
that drip, hang, redirect, send captive-portal HTML or 50 MB; ``~/.netrc`` never used.

Every server is on 127.0.0.1 (named ``localhost`` where a certificate needs a name) and
every wait is bounded; wall times are measured with ``time.monotonic``.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from batch_latch.fusebill.answers import Holding, Meaning, Reply, classify_latch, classify_read
from batch_latch.fusebill.client import MAX_BODY, FusebillClient
from batch_latch.fusebill.listing import MAX_URL, batches, classify_list
from batch_latch.vocab import StopReason
from tests import netdoubles as nd
from tests.doubles import wait_for

KEY = "sk_live_SECRET123"
GEOTAB = "0909909"

MakeClient = Callable[..., FusebillClient]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """``make_client(server_url, env={}, timeout=5.0)``; every client is closed at the end."""
    made: list[FusebillClient] = []

    def make(url: str, env: dict[str, str] | None = None, timeout: float = 5.0) -> FusebillClient:
        client = FusebillClient(f"{url}/v1", KEY, timeout=timeout, env=env or {})
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> str:
    return nd.ca_file(ca, tmp_path)


def timed(call: Callable[[], Reply]) -> tuple[Reply, float]:
    start = time.monotonic()
    reply = call()
    return reply, time.monotonic() - start


# --- TLS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"])
def test_https_with_our_ca_trusted_through_each_variable(
    make_client: MakeClient, ca: trustme.CA, bundle: str, variable: str
) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with nd.Loopback(nd.fusebill, tls=tls, host="localhost") as server:
        reply = make_client(server.url, {variable: bundle}).latch(671201, GEOTAB)
    assert reply.error is None, reply.detail
    assert classify_latch(reply, GEOTAB).kind is Meaning.SUCCESS
    assert server.seen[0].headers["authorization"] == f"Basic {KEY}"


@pytest.mark.parametrize(
    ("names", "expired", "trusted", "cause"),
    [
        (("localhost",), False, False, "unable to get local issuer certificate"),
        (("localhost",), True, True, "certificate has expired"),
        (("elsewhere.test",), False, True, "Hostname mismatch"),
    ],
    ids=["unknown-issuer", "expired", "wrong-name"],
)
def test_certificate_failures_stop_with_their_cause(
    make_client: MakeClient,
    ca: trustme.CA,
    bundle: str,
    names: tuple[str, ...],
    expired: bool,
    trusted: bool,
    cause: str,
) -> None:
    tls = nd.tls_server_context(ca, *names, expired=expired)
    env = {"REQUESTS_CA_BUNDLE": bundle} if trusted else {}
    with nd.Loopback(nd.fusebill, tls=tls, host="localhost") as server:
        reply = make_client(server.url, env).latch(671201, GEOTAB)
    assert (reply.status, reply.error) == (None, "tls")
    assert cause in reply.detail
    verdict = classify_latch(reply, GEOTAB)
    assert (verdict.kind, verdict.stop) == (Meaning.STOP, StopReason.TLS)
    assert cause in verdict.message and "REQUESTS_CA_BUNDLE" in verdict.message
    assert server.seen == []  # nothing, and no key, went to a server we could not verify


# --- proxies ---------------------------------------------------------------------------------


def test_https_goes_through_the_connect_proxy(
    make_client: MakeClient, ca: trustme.CA, bundle: str
) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with nd.Loopback(nd.fusebill, tls=tls, host="localhost") as server, nd.ConnectProxy() as proxy:
        env = {"REQUESTS_CA_BUNDLE": bundle, "https_proxy": proxy.url}
        client = make_client(server.url, env)
        replies = [client.latch(671201, GEOTAB), client.customer(671201)]
    assert [r.status for r in replies] == [200, 200]
    assert proxy.requests == [f"CONNECT localhost:{server.port} HTTP/1.0"]  # one tunnel, kept
    assert KEY.encode() not in b"".join(proxy.heads)  # the key travels inside the tunnel only
    assert server.seen[0].headers["authorization"] == f"Basic {KEY}"


@pytest.mark.parametrize(
    "no_proxy", ["localhost", "LOCALHOST:{port}", "*", "example.test,.localhost"]
)
def test_no_proxy_bypasses_the_proxy(
    make_client: MakeClient, ca: trustme.CA, bundle: str, no_proxy: str
) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with nd.Loopback(nd.fusebill, tls=tls, host="localhost") as server, nd.ConnectProxy() as proxy:
        env = {
            "REQUESTS_CA_BUNDLE": bundle,
            "HTTPS_PROXY": proxy.url,
            "NO_PROXY": no_proxy.format(port=server.port),
        }
        reply = make_client(server.url, env).latch(671201, GEOTAB)
    assert reply.status == 200
    assert proxy.requests == []


def test_a_proxy_asking_for_credentials_stops_the_run(
    make_client: MakeClient, ca: trustme.CA, bundle: str
) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with (
        nd.Loopback(nd.fusebill, tls=tls, host="localhost") as server,
        nd.ConnectProxy(answer_407=True) as proxy,
    ):
        env = {"REQUESTS_CA_BUNDLE": bundle, "HTTPS_PROXY": proxy.url}
        reply = make_client(server.url, env).latch(671201, GEOTAB)
        proxy_url = proxy.url
    assert (reply.status, reply.error) == (None, "proxy")
    assert "407" in reply.detail and proxy_url in reply.detail
    verdict = classify_latch(reply, GEOTAB)
    assert (verdict.kind, verdict.stop) == (Meaning.STOP, StopReason.PROXY)
    assert "HTTPS_PROXY" in verdict.message and server.seen == []


def test_a_plain_http_proxy_answering_407_stops_the_run(make_client: MakeClient) -> None:
    with nd.Loopback(nd.fusebill) as server, nd.ConnectProxy(answer_407=True) as proxy:
        reply = make_client(server.url, {"HTTP_PROXY": proxy.url}).latch(1, GEOTAB)
    assert reply.status == 407
    assert proxy.requests[0].startswith(f"POST {server.url}/v1/Geotab/LatchCustomer ")
    assert classify_latch(reply, GEOTAB).stop is StopReason.PROXY


def test_a_proxy_that_is_not_there_stops_the_run(make_client: MakeClient) -> None:
    with nd.Loopback(nd.fusebill) as server, nd.closed_port() as port:
        proxy = f"http://user:pw@127.0.0.1:{port}"
        reply = make_client(server.url, {"ALL_PROXY": proxy}).latch(1, GEOTAB)
    assert reply.error == "proxy"
    assert "refused" in reply.detail and "pw" not in reply.detail
    assert server.seen == []


# --- deadlines -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_dripping_body_is_cut_at_the_timeout(make_client: MakeClient) -> None:
    with nd.Loopback(nd.drip(127, 0.5)) as server:
        client = make_client(server.url, timeout=2.0)
        reply, took = timed(lambda: client.latch(1, GEOTAB))
    assert (reply.status, reply.error) == (None, "timeout")
    assert "2 s" in reply.detail
    assert 1.9 <= took <= 2.0 + 5.0  # the drip would go on for a minute; slack for load


@pytest.mark.parametrize(
    ("respond", "tls"),
    [
        (nd.drip(None, 0.2), False),
        (nd.drip(None, 0.2), True),
        (nd.drip_head(0.2), False),
        (nd.hang, False),
    ],
    ids=["endless-body", "endless-body-tls", "endless-head", "silent"],
)  # fmt: skip
def test_no_server_holds_a_request_past_its_timeout(
    make_client: MakeClient, ca: trustme.CA, bundle: str, respond: nd.Respond, tls: bool
) -> None:
    context = nd.tls_server_context(ca, "localhost") if tls else None
    with nd.Loopback(respond, tls=context, host="localhost") as server:
        client = make_client(server.url, {"SSL_CERT_FILE": bundle}, timeout=1.0)
        reply, took = timed(lambda: client.latch(1, GEOTAB))
        assert server.seen  # the request did get there
    assert reply.error == "timeout", reply
    assert 0.9 <= took <= 1.0 + 5.0  # these never end by themselves; slack for a busy CI
    assert classify_latch(reply, GEOTAB).ambiguous


def test_the_connection_after_a_cut_is_a_fresh_one(make_client: MakeClient) -> None:
    calls = []

    def first_hangs(exchange: nd.Exchange) -> None:
        calls.append(1)
        if len(calls) == 1:
            nd.hang(exchange)
        else:
            nd.fusebill(exchange)

    with nd.Loopback(first_hangs) as server:
        client = make_client(server.url, timeout=0.5)
        first = client.latch(1, GEOTAB)
        second = client.latch(2, GEOTAB)
        third = client.latch(3, GEOTAB)
    assert first.error == "timeout"
    assert (second.status, third.status) == (200, 200)
    peers = [seen.peer for seen in server.seen]
    assert peers[0] != peers[1] == peers[2]  # cut connection dropped; the new one kept alive


def interim_then_late(exchange: nd.Exchange) -> None:
    """``102 Processing``, then the final answer once the client sends more or hangs up."""
    if exchange.write(b"HTTP/1.1 102 Processing\r\n\r\n"):
        select.select([exchange.handler.connection], [], [], nd.SERVER_WAIT)
        with contextlib.suppress(OSError):
            exchange.send_json(200, {"id": 1, "geotabId": "LATE-ANSWER"})


def bodiless_with_a_body(status: int) -> nd.Respond:
    """A 204 or 304 followed by bytes it may not carry (they stay in the line)."""

    def respond(exchange: nd.Exchange) -> None:
        exchange.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\nstray".encode())

    return respond


@pytest.mark.parametrize(
    ("first", "status"),
    [
        (interim_then_late, 102),
        (bodiless_with_a_body(204), 204),
        (bodiless_with_a_body(304), 304),
        (nd.big_body(MAX_BODY + 1, declare_length=True, status=200), 200),
    ],
    ids=["1xx-then-late", "204-with-body", "304-with-body", "body-not-read-to-its-end"],
)
def test_a_connection_in_doubt_is_never_reused(
    make_client: MakeClient, first: nd.Respond, status: int
) -> None:
    """The fault lab: after a 1xx the server's late final answer was read as the next
    request's. After any answer that may leave something in the line, the next request
    goes on a new connection and gets its own answer."""
    answered: list[int] = []

    def respond(exchange: nd.Exchange) -> None:
        answered.append(1)
        (first if len(answered) == 1 else nd.fusebill)(exchange)

    with nd.Loopback(respond) as server:
        client = make_client(server.url)
        reply = client.latch(1, GEOTAB)
        read = client.customer(2)
        again = client.customer(3)
    assert reply.status == status
    assert (read.status, read.body) == (200, {"id": 2, "geotabId": None}), read
    assert (again.status, again.body) == (200, {"id": 3, "geotabId": None}), again
    peers = [seen.peer for seen in server.seen]
    assert peers[0] != peers[1] == peers[2]  # the doubtful one dropped; the new one kept


def test_many_requests_share_one_watchdog_thread(make_client: MakeClient) -> None:
    with nd.Loopback(nd.drip(None, 0.2)) as server:
        client = make_client(server.url, timeout=1.0)
        replies: list[Reply] = []
        spans: list[tuple[float, float]] = []

        def one() -> None:
            start = time.monotonic()
            replies.append(client.latch(1, GEOTAB))
            spans.append((start, time.monotonic()))

        workers = [threading.Thread(target=one) for _ in range(6)]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(server.seen) == 6, deadline=30.0)
        watchdogs = [t for t in threading.enumerate() if t.name == "deadlines"]
        for worker in workers:
            worker.join(30.0)
    assert len(watchdogs) == 1
    assert [r.error for r in replies] == ["timeout"] * 6
    # All six were cut while all six were waiting: one deadline after another would leave
    # no moment inside every request (load-proof, unlike a bound on the total time).
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_abort_cuts_every_request_in_flight_at_once(make_client: MakeClient) -> None:
    endless = nd.drip(None, 0.2)

    def first_customer_drips(exchange: nd.Exchange) -> None:
        (endless if exchange.seen.path.endswith("/customers/1") else nd.fusebill)(exchange)

    with nd.Loopback(first_customer_drips) as server:
        client = make_client(server.url, timeout=30.0)
        replies: list[Reply] = []
        workers = [
            threading.Thread(target=lambda: replies.append(client.customer(1))) for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(server.seen) == 3, deadline=30.0)
        start = time.monotonic()
        client.abort()
        for worker in workers:
            worker.join(5.0)
        took = time.monotonic() - start
        after = client.customer(2)  # the client still works afterwards
    assert took <= 10.0  # the requests' own timeout is 30 s
    assert [(r.error, r.detail) for r in replies] == [("connection", "cut off: interrupted")] * 3
    assert after.status == 200


# --- big bodies ------------------------------------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes this thread's sockets hand to the client (the servers' threads not counted)."""
    counts = {"bytes": 0}
    me = threading.get_ident()
    original = socket.socket.recv_into

    def counting(self: socket.socket, buffer: Any, *args: Any) -> int:
        n = original(self, buffer, *args)
        if threading.get_ident() == me:
            counts["bytes"] += n
        return n

    monkeypatch.setattr(socket.socket, "recv_into", counting)
    return counts


@pytest.mark.parametrize("declare_length", [False, True], ids=["streamed", "declared"])
def test_a_50_mb_answer_is_not_read_past_one_mib(
    make_client: MakeClient, received: dict[str, int], declare_length: bool
) -> None:
    with nd.Loopback(nd.big_body(FIFTY_MB, declare_length=declare_length)) as server:
        client = make_client(server.url, timeout=10.0)
        tracemalloc.start()
        try:
            reply = client.latch(1, GEOTAB)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        wait_for(lambda: server.stop.is_set() or server.sent_bytes > 0, deadline=30.0)
    assert (reply.status, reply.error, reply.body) == (502, "too_large", None)
    assert received["bytes"] <= MAX_BODY + 100 * 1024  # what the client read: ~1.1 MiB at most
    assert peak < 3 * MAX_BODY  # memory does not grow with the answer
    assert server.sent_bytes < FIFTY_MB // 4  # the server was cut off early
    if declare_length:
        assert received["bytes"] < 128 * 1024  # Content-Length says enough: no body read
    verdict = classify_latch(reply, GEOTAB)
    assert (verdict.kind, verdict.ambiguous) == (Meaning.RETRYABLE, True)


# --- answers that are not Fusebill's ---------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_stops_with_its_location(
    make_client: MakeClient, status: int
) -> None:
    location = "https://secure.fusebill.test/v1/Geotab/LatchCustomer"
    with nd.Loopback(nd.redirect(status, location)) as server:
        reply = make_client(server.url).latch(1, GEOTAB)
    assert len(server.seen) == 1
    verdict = classify_latch(reply, GEOTAB)
    assert (verdict.kind, verdict.stop) == (Meaning.STOP, StopReason.REDIRECT)
    assert location in verdict.message and "FUSEBILL_BASE_URL" in verdict.message


def test_a_captive_portal_proves_nothing(make_client: MakeClient) -> None:
    with nd.Loopback(nd.html_200) as server:
        client = make_client(server.url)
        latch, read = client.latch(1, GEOTAB), client.customer(1)
    assert classify_latch(latch, GEOTAB).kind is Meaning.UNPROVEN
    verdict, holding = classify_read(read, 1)
    assert (verdict.kind, verdict.error_key, holding) == (Meaning.RETRYABLE, "unreadable", None)
    assert "Guest Wi-Fi login" in verdict.message


def test_a_wrong_base_url_stops(make_client: MakeClient) -> None:
    with nd.Loopback(nd.fusebill) as server:
        client = FusebillClient(server.url, KEY, timeout=5, env={})  # no /v1
        reply = client.latch(1, GEOTAB)
        client.close()
    verdict = classify_latch(reply, GEOTAB)
    assert (verdict.kind, verdict.stop) == (Meaning.STOP, StopReason.WRONG_URL)
    assert f"{server.url}/Geotab/LatchCustomer" in verdict.message


def test_a_refused_connection_is_retryable(make_client: MakeClient) -> None:
    with nd.closed_port() as port:
        reply = make_client(f"http://127.0.0.1:{port}").latch(1, GEOTAB)
    assert reply.error == "connection" and "refused" in reply.detail
    assert classify_latch(reply, GEOTAB).kind is Meaning.RETRYABLE


def test_keep_alive_one_connection_per_worker(make_client: MakeClient) -> None:
    with nd.Loopback(nd.fusebill) as server:
        client = make_client(server.url)
        for n in range(5):
            assert client.latch(n + 1, GEOTAB).status == 200
    assert len({seen.peer for seen in server.seen}) == 1


# --- netrc -----------------------------------------------------------------------------------


def test_netrc_never_replaces_the_key(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text(
        "machine 127.0.0.1 login other password stolen\n"
        "machine localhost login other password stolen\n"
        "default login anyone password anything\n"
    )
    os.chmod(netrc, stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    with nd.Loopback(nd.fusebill) as server:
        # The file is one requests would use: a plain session sends its credentials.
        assert requests.utils.get_netrc_auth(server.url) == ("other", "stolen")
        with requests.Session() as plain:
            plain.get(f"{server.url}/v1/customers/1", timeout=5)
        env = {"HOME": str(tmp_path), "NETRC": str(netrc)}
        client = make_client(server.url, env)
        client.latch(1, GEOTAB)
        client.customer(1)
    assert server.seen[0].headers["authorization"].startswith("Basic ")
    assert server.seen[0].headers["authorization"] != f"Basic {KEY}"
    assert [seen.headers["authorization"] for seen in server.seen[1:]] == [f"Basic {KEY}"] * 2


# --- the customer list -----------------------------------------------------------------------

BIG_ID = 9_223_372_036_854_775_807  # 19 digits


def test_a_list_read_sends_fusebills_set_filter_as_is(make_client: MakeClient) -> None:
    ids = [BIG_ID, 5, 17]
    with nd.Loopback(nd.customer_list()) as server:
        client = make_client(server.url)
        first, third = client.customers(ids), client.customers(ids, page=2)
    query = f"/v1/customers?query=id:{BIG_ID},5,17&pageSize=3"
    assert [seen.path for seen in server.seen] == [f"{query}&pageNumber=0", f"{query}&pageNumber=2"]
    assert [(seen.method, seen.body) for seen in server.seen] == [("GET", b"")] * 2
    assert server.seen[0].headers["authorization"] == f"Basic {KEY}"
    assert (first.url, third.status) == (f"{server.url}{query}&pageNumber=0", 200)
    got = classify_list(first, ids, 0)
    assert dict(got.holdings) == {i: Holding(None) for i in ids}
    assert (got.untrusted, got.read_alone, got.next_page) == (None, (), None)


def test_batched_list_urls_arrive_under_2000_characters(make_client: MakeClient) -> None:
    ids = [BIG_ID - n for n in range(250)]
    with nd.Loopback(nd.customer_list()) as server:
        client = make_client(server.url + "/" + "p" * 300)  # a long base URL
        base = f"{server.url}/{'p' * 300}/v1"
        cut = batches(base, ids, 100)
        replies = [client.customers(batch) for batch in cut]
    assert sorted(c["id"] for r in replies for c in r.body) == sorted(ids)
    sent = [f"{server.url}{seen.path}" for seen in server.seen]
    assert len(sent) == len(cut) >= 3 and all(len(url) < MAX_URL for url in sent)
    assert [int(s.split("pageSize=")[1].split("&")[0]) for s in sent] == [len(b) for b in cut]
    assert max(len(url) for url in sent) > MAX_URL - 25  # each batch filled near the limit


def test_a_list_read_asks_for_1_to_1000_ids_and_sends_nothing_otherwise(
    make_client: MakeClient,
) -> None:
    with nd.Loopback(nd.customer_list()) as server:
        client = make_client(server.url)
        assert len(client.customers(list(range(1, 1001))).body) == 1000
        for wrong in ([], list(range(1, 1002))):
            with pytest.raises(ValueError, match="1 to 1000 ids"):
                client.customers(wrong)
    assert len(server.seen) == 1 and "pageSize=1000&" in server.seen[0].path


@pytest.mark.parametrize(
    ("count", "pad", "read"),
    [
        (200, 7_000, True),  # 1.4 MB: over the 1 MiB of any answer, within 200 x 8 KiB
        (200, 8_300, False),  # 1.66 MB: over 200 x 8 KiB
        (10, 90_000, True),  # 900 KB: over 10 x 8 KiB, within the 1 MiB every answer gets
        (10, 110_000, False),  # 1.1 MB: over 1 MiB
    ],
)
def test_a_list_answer_may_be_8_kib_per_customer_asked_and_at_least_1_mib(
    make_client: MakeClient, count: int, pad: int, read: bool
) -> None:
    ids = list(range(1, count + 1))
    with nd.Loopback(nd.customer_list(pad)) as server:
        reply = make_client(server.url, timeout=10.0).customers(ids)
    if read:
        assert reply.error is None and len(reply.body) == count
        assert classify_list(reply, ids, 0).holdings.keys() == set(ids)
    else:
        assert (reply.status, reply.error, reply.body) == (200, "too_large", None)
        cap = max(MAX_BODY, count * 8192)
        assert f"over the {cap / MAX_BODY:g} MiB cap" in reply.detail
        assert classify_list(reply, ids, 0).verdict.kind is Meaning.RETRYABLE


def test_a_streamed_list_answer_is_not_read_past_its_cap(
    make_client: MakeClient, received: dict[str, int]
) -> None:
    ids = list(range(1, 301))  # a cap of 2.34 MiB
    with nd.Loopback(nd.big_body(FIFTY_MB, declare_length=False, status=200)) as server:
        reply = make_client(server.url, timeout=10.0).customers(ids)
        wait_for(lambda: server.stop.is_set() or server.sent_bytes > 0, deadline=30.0)
    assert (reply.status, reply.error) == (200, "too_large")
    assert 300 * 8192 < received["bytes"] <= 300 * 8192 + 100 * 1024


def test_the_key_is_in_no_list_reply(make_client: MakeClient) -> None:
    ids = [1, 2, 3]
    replies: list[Reply] = []
    with nd.Loopback(nd.customer_list(echo=f"Basic {KEY}")) as server:
        replies.append(make_client(server.url).customers(ids))  # an answer echoing the key
    with nd.Loopback(nd.customer_list(pad=600_000, echo=KEY)) as server:
        replies.append(make_client(server.url).customers(ids))  # too large
    with nd.Loopback(nd.hang) as server:
        replies.append(make_client(server.url, timeout=0.5).customers(ids))
    with nd.closed_port() as port:
        replies.append(make_client(f"http://127.0.0.1:{port}").customers(ids))
    assert [r.error for r in replies] == [None, "too_large", "timeout", "connection"]
    assert replies[0].body[0]["notes"].startswith("Basic ")
    for reply in replies:
        assert KEY not in repr(reply)
        answer = classify_list(reply, ids, 0)
        assert KEY not in repr(answer) and KEY not in (answer.notice or "")
