"""The new switches over real loopback sockets: preset, hidden geotabId, unlatch, TLS, and the
misbehaving-network rehearsals (HTML 200, dripping bodies, redirects, applied-then-504)."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
import trustme

from batch_latch.sandbox import DEFAULT_API_KEY, Sandbox

from .helpers import AUTH, MakeSandbox, assert_rate_headers, error_value, latch


def test_preset_customers_start_latched(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    preset = tmp_path / "preset.csv"
    preset.write_text("fusebillId,geotabId\n1000001,0909909\n", encoding="utf-8")
    sb = make_sandbox(preset=preset)
    with requests.Session() as http:
        http.headers.update(AUTH)
        held = http.get(f"{sb.base_url}/customers/1000001", timeout=5)
        assert held.status_code == 200
        assert (held.json()["id"], held.json()["geotabId"]) == (1_000_001, "0909909")
        assert http.get(f"{sb.base_url}/customers/1000002", timeout=5).json()["geotabId"] is None
        url = f"{sb.base_url}/Geotab/UnlatchCustomer"
        cleared = http.post(url, json={"fusebillId": 1_000_001}, timeout=5)
    assert cleared.status_code == 200
    assert cleared.json()["geotabId"] is None
    assert_rate_headers(cleared)
    assert sb.geotab_id_of(1_000_001) is None


def test_hidden_geotab_id_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(hide_geotab_id=True, preset={1_000_001: "G1"})
    read = http.get(f"{sb.base_url}/customers/1000001", timeout=5)
    assert read.status_code == 200
    assert "geotabId" not in read.json()
    assert b"geotabId" not in read.content
    assert_rate_headers(read)


def test_unlatch_of_an_unknown_customer_is_fusebills_404(
    sandbox: Sandbox, http: requests.Session
) -> None:
    url = f"{sandbox.base_url}/Geotab/UnlatchCustomer"
    missing = http.post(url, json={"fusebillId": 55}, timeout=5)
    assert missing.status_code == 404
    assert error_value(missing) == "Customer with id 55 not found."


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA made for the test, and a server certificate for 127.0.0.1 it issued."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return ca_file, cert_file, key_file


def test_tls_serves_https_to_a_client_trusting_the_ca(
    make_sandbox: MakeSandbox, tls_files: tuple[Path, Path, Path]
) -> None:
    ca_file, cert_file, key_file = tls_files
    sb = make_sandbox(tls_cert=cert_file, tls_key=key_file)
    assert sb.base_url.startswith("https://127.0.0.1:")
    with requests.Session() as http:
        http.headers.update(AUTH)
        http.trust_env = False  # else REQUESTS_CA_BUNDLE, if set, would override verify
        http.verify = str(ca_file)
        # A client without the CA fails verification; the server keeps serving others.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sb.base_url}/customers/1000001", headers=AUTH, timeout=5)
        response = latch(http, sb, 1_000_001, "TLS")
        assert response.status_code == 200
        assert response.json()["geotabId"] == "TLS"
        assert_rate_headers(response)
        again = http.get(f"{sb.base_url}/customers/1000001", timeout=5)  # keep-alive over TLS
        assert again.json()["geotabId"] == "TLS"
    # Plain HTTP to the TLS port is refused at the handshake, not answered.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sb.base_url.replace("https", "http") + "/customers/1", timeout=5)
    sb.stop()


def test_html_200_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(html_200_rate=1.0)
    response = latch(http, sb, 1_000_001, "X")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text
    assert "X-Rate-Limit-Limit-Minute" not in response.headers
    assert sb.geotab_id_of(1_000_001) is None
    assert sb.requests_log()[-1].note.startswith("captive portal")


def test_empty_200_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(empty_200_rate=1.0)
    response = latch(http, sb, 1_000_001, "X")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["Content-Length"] == "0"
    assert sb.geotab_id_of(1_000_001) is None


def test_applied_then_504_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(applied_then_504_rate=1.0)
    response = latch(http, sb, 1_000_001, "LANDED")
    assert response.status_code == 504
    assert "Gateway Time-out" in response.text
    assert sb.geotab_id_of(1_000_001) == "LANDED"
    read_back = http.get(f"{sb.base_url}/customers/1000001", timeout=5)
    assert read_back.json()["geotabId"] == "LANDED"


def test_redirect_to_answers_301_with_location(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(redirect_to="https://example.invalid/v1/")
    url = f"{sb.base_url}/Geotab/LatchCustomer"
    body = {"fusebillId": 1_000_001, "geotabId": "X"}
    response = http.post(url, json=body, timeout=5, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == "https://example.invalid/v1/"
    got = http.get(f"{sb.base_url}/customers/1", timeout=5, allow_redirects=False)
    assert got.status_code == 301
    assert sb.geotab_id_of(1_000_001) is None


def test_retry_after_seconds_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(profile="testdrive", retry_after_seconds=0)
    statuses = [latch(http, sb, 1_000_001, "X").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    refused = latch(http, sb, 1_000_001, "X")
    assert refused.headers["Retry-After"] == "0"


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "connection closed before the headers"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_drip_sends_the_body_a_byte_at_a_time(make_sandbox: MakeSandbox) -> None:
    delay, wanted = 0.05, 8
    sb = make_sandbox(drip_seconds=delay)
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
        request = (
            "GET /v1/customers/1000001 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {DEFAULT_API_KEY}\r\n\r\n"
        )
        conn.sendall(request.encode())
        head, early = read_head(conn)
        assert head.startswith(b"HTTP/1.1 200")
        assert int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) > 1000
        assert len(early) <= 1  # the headers do not bring the body with them
        arrivals: list[float] = []
        received = len(early)
        while received < wanted:
            chunk = conn.recv(4096)
            assert chunk
            received += len(chunk)
            arrivals.append(time.monotonic())
    # The body came in pieces, spread out over the drip delay (and it is far from complete).
    assert len(arrivals) >= wanted // 2
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * delay * 0.6
    sb.stop()  # cuts the rest of the drip short


def test_drip_only_for_chosen_ids(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(drip_seconds=5.0, drip_ids=frozenset({1_000_002}))
    started = time.monotonic()
    assert http.get(f"{sb.base_url}/customers/1000001", timeout=5).status_code == 200
    assert time.monotonic() - started < 4  # a dripped answer would take 5 s a byte
    # A read timeout mid-body surfaces as ConnectionError in requests, before it as Timeout.
    with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        http.get(f"{sb.base_url}/customers/1000002", timeout=0.3)
    sb.stop()


def test_tls_handshake_does_not_block_other_clients(
    make_sandbox: MakeSandbox, tls_files: tuple[Path, Path, Path]
) -> None:
    ca_file, cert_file, key_file = tls_files
    sb = make_sandbox(tls_cert=cert_file, tls_key=key_file)
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5):  # connects, says nothing
        response = requests.get(
            f"{sb.base_url}/customers/1000001", headers=AUTH, verify=str(ca_file), timeout=5
        )
        assert response.status_code == 200
        with (
            socket.create_connection(("127.0.0.1", sb.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() is not None
