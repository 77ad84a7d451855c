"""FusebillClient against requests-mock: the requests it sends, the Reply it hands back, that
the API key never leaks; and, pure, the proxy / CA settings it takes from the environment
and the redaction rule. What an answer means is tests/fusebill/test_answers.py; real sockets are
tests/fusebill/test_client_network.py."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock as rm
import urllib3.exceptions
from hypothesis import given
from hypothesis import strategies as st
from urllib3.util.ssl_match_hostname import CertificateError

from batch_latch.fusebill.answers import Meaning, Reply, classify_latch
from batch_latch.fusebill.client import MAX_BODY, FusebillClient
from batch_latch.fusebill.redact import MARK, Redactor
from batch_latch.fusebill.service import FusebillService

BASE = "https://fusebill.test/v1"
LATCH = f"{BASE}/Geotab/LatchCustomer"
UNLATCH = f"{BASE}/Geotab/UnlatchCustomer"
KEY = "sk_live_SECRET123"


def customer(geotab_id: Any = "0909909", fusebill_id: int = 671201) -> dict[str, Any]:
    return {"firstName": "John", "geotabId": geotab_id, "id": fusebill_id}


def error_body(status: int, value: str) -> dict[str, Any]:
    return {
        "ErrorId": 0,
        "HttpStatusCode": status,
        "Errors": [{"Key": "Api Error", "Value": value}],
    }


@pytest.fixture
def client() -> Iterator[FusebillClient]:
    c = FusebillClient(BASE + "/", KEY, timeout=7.5, env={})
    yield c
    c.close()


def latch(client: FusebillClient, mock: rm.Mocker, **response: Any) -> Reply:
    mock.post(LATCH, **response)
    return client.latch(671201, "0909909")


def test_the_client_is_a_fusebill_service(client: FusebillClient) -> None:
    service: FusebillService = client
    assert service is client


# --- the requests ----------------------------------------------------------------------------


def test_latch_sends_post_with_json_body_and_key_as_given(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(LATCH, json=customer())
    got = client.latch(12717595, "0909909")

    assert requests_mock.call_count == 1
    sent = requests_mock.last_request
    assert sent is not None
    assert sent.method == "POST"
    assert sent.url == LATCH  # trailing slash of the base removed, no double slash
    body = sent.json()
    assert body == {"fusebillId": 12717595, "geotabId": "0909909"}
    assert type(body["fusebillId"]) is int
    assert type(body["geotabId"]) is str  # leading zero kept: text, not a number
    assert sent.headers["Authorization"] == f"Basic {KEY}"
    assert base64.b64encode(KEY.encode()).decode() not in sent.headers["Authorization"]
    assert sent.headers["Content-Type"] == "application/json"
    timeout: Any = sent.timeout  # the stub says a number; requests passes the pair on
    connect, read = timeout
    assert 7.0 < connect <= 7.5 and 7.0 < read <= 7.5  # the time left of the whole request
    assert got.url == LATCH


def test_unlatch_sends_post_with_the_fusebill_id_only(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(UNLATCH, json=customer(None))
    got = client.unlatch(671201)
    sent = requests_mock.last_request
    assert sent is not None and sent.method == "POST"
    assert sent.json() == {"fusebillId": 671201}
    assert sent.headers["Authorization"] == f"Basic {KEY}"
    assert (got.status, got.url) == (200, UNLATCH)


def test_customer_read_is_a_get_on_the_customer(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(f"{BASE}/customers/671201", json=customer())
    got = client.customer(671201)
    sent = requests_mock.last_request
    assert sent is not None
    assert (sent.method, sent.url) == ("GET", f"{BASE}/customers/671201")
    assert sent.headers["Authorization"] == f"Basic {KEY}"
    assert got.body["geotabId"] == "0909909"


def test_largest_fusebill_id_goes_as_a_json_integer(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(LATCH, json={})
    client.latch(9223372036854775807, "x")
    sent = requests_mock.last_request
    assert sent is not None
    assert '"fusebillId": 9223372036854775807' in sent.text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    # Following one would carry the key to another host, or turn the POST into a GET.
    requests_mock.post(LATCH, status_code=status, headers={"Location": "https://elsewhere.test/"})
    requests_mock.get("https://elsewhere.test/", json=customer())
    requests_mock.post("https://elsewhere.test/", json=customer())
    got = client.latch(671201, "0909909")
    assert requests_mock.call_count == 1
    assert got.status == status and got.header("Location") == "https://elsewhere.test/"
    assert classify_latch(got, "0909909").kind is Meaning.STOP


# --- the reply -------------------------------------------------------------------------------


def test_reply_keeps_status_parsed_body_and_lowercased_headers(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    got = latch(
        client, requests_mock, json=customer(), headers={"X-Rate-Limit-Remaining-Minute": "7"}
    )
    assert (got.status, got.body, got.error) == (200, customer(), None)
    assert got.header("X-Rate-Limit-Remaining-Minute") == "7"
    assert got.headers["x-rate-limit-remaining-minute"] == "7"


CP1252 = "text/plain; charset=cp1252"


@pytest.mark.parametrize(
    ("response", "body"),
    [
        ({"text": ""}, ""),
        ({"text": "OK"}, "OK"),
        ({"text": "<html>portal</html>"}, "<html>portal</html>"),
        ({"text": '{"id": 1, "geot'}, '{"id": 1, "geot'),
        ({"content": "café".encode("cp1252"), "headers": {"Content-Type": CP1252}}, "café"),
        ({"content": b"\xff\xfe not text"}, "\ufffd\ufffd not text"),
        ({"content": b"\xef\xbb\xbf[1, 2]"}, [1, 2]),
    ],
    ids=["empty", "text", "html", "broken-json", "declared-charset", "bad-bytes", "json-bom"],
)  # fmt: skip
def test_body_is_json_when_it_parses_else_the_text(
    client: FusebillClient, requests_mock: rm.Mocker, response: dict[str, Any], body: Any
) -> None:
    got = latch(client, requests_mock, status_code=200, **response)
    assert got.body == body and got.error is None


def test_a_body_over_one_mib_is_not_kept(client: FusebillClient, requests_mock: rm.Mocker) -> None:
    got = latch(client, requests_mock, status_code=502, content=b"x" * (MAX_BODY + 1))
    assert (got.status, got.body, got.error) == (502, None, "too_large")
    assert "not read" in got.detail
    exactly = latch(client, requests_mock, status_code=200, content=b" " * MAX_BODY)
    assert exactly.error is None  # the cap is 1 MiB inclusive


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (requests.exceptions.ConnectTimeout, "connection"),  # nothing left: as a refusal
        (requests.exceptions.ReadTimeout, "timeout"),
        (requests.exceptions.ConnectionError("Connection aborted"), "connection"),
        (requests.exceptions.ChunkedEncodingError("connection broken"), "connection"),
        (requests.exceptions.ProxyError("Unable to connect to proxy"), "proxy"),
        (requests.exceptions.SSLError("bad handshake"), "connection"),  # no ssl cause inside
    ],
    ids=["connect-timeout", "read-timeout", "connection", "broken-body", "proxy", "ssl-no-cause"],
)  # fmt: skip
def test_no_answer_becomes_an_error_reply(
    client: FusebillClient, requests_mock: rm.Mocker, exc: Any, error: str
) -> None:
    got = latch(client, requests_mock, exc=exc)
    assert (got.status, got.error, got.url) == (None, error, LATCH)
    assert got.detail and "\n" not in got.detail
    if error == "timeout" or exc is requests.exceptions.ConnectTimeout:
        assert "7.5 s" in got.detail


def _verify_error(code: int, message: str | None) -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] verify failed")
    e.verify_code, e.verify_message = code, message  # type: ignore[assignment]
    return e


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (_verify_error(10, "certificate has expired"), "certificate has expired"),
        (_verify_error(10, None), "certificate has expired"),  # the code alone is enough
        (_verify_error(20, None), "unable to get local issuer certificate"),
        (_verify_error(62, "Hostname mismatch, certificate is not valid for 'a.test'."),
         "Hostname mismatch, certificate is not valid for 'a.test'."),
        (CertificateError("hostname 'a.test' doesn't match 'b.test'"),
         "hostname 'a.test' doesn't match 'b.test'"),
    ],
    ids=["expired", "expired-code-only", "issuer-code-only", "hostname", "urllib3-hostname"],
)  # fmt: skip
def test_certificate_errors_are_known_by_their_type(
    client: FusebillClient, requests_mock: rm.Mocker, cause: BaseException, words: str
) -> None:
    wrapped = requests.exceptions.SSLError(urllib3.exceptions.SSLError(cause))
    got = latch(client, requests_mock, exc=wrapped)
    assert (got.status, got.error) == (None, "tls")
    assert got.detail.startswith(f"certificate verify failed: {words}")


@pytest.mark.parametrize("bug", [KeyError("fusebillId"), TypeError("bad operand"), RuntimeError])
def test_a_bug_inside_a_request_propagates_instead_of_looking_like_the_network(
    client: FusebillClient, requests_mock: rm.Mocker, bug: Any
) -> None:
    requests_mock.post(LATCH, exc=bug)
    with pytest.raises(type(bug) if isinstance(bug, BaseException) else bug):
        client.latch(671201, "0909909")
    requests_mock.post(LATCH, json=customer())  # the client is left working
    assert classify_latch(client.latch(671201, "0909909"), "0909909").kind is Meaning.SUCCESS
    assert client._transport._deadlines._live == set()  # no ticket left for the watchdog to cut


def test_a_bug_reading_the_body_propagates(
    client: FusebillClient, requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(response: Any, cap: int = 0) -> bytes:
        raise AttributeError("'NoneType' object has no attribute 'read'")

    monkeypatch.setattr("batch_latch.fusebill.transport.read_capped", broken)
    requests_mock.post(LATCH, json=customer())
    with pytest.raises(AttributeError):
        client.latch(671201, "0909909")


def test_a_missing_ca_bundle_is_a_tls_error_before_anything_is_sent(
    requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    c = FusebillClient(BASE, KEY, timeout=5, env={"SSL_CERT_FILE": str(missing)})
    got = c.latch(1, "x")
    c.close()
    assert got.error == "tls" and "SSL_CERT_FILE" in got.detail and str(missing) in got.detail
    assert requests_mock.call_count == 0


# --- proxies ------------------------------------------------------------------------------

PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    "proxy",
    [
        "http://:0",
        "http://user:pw@127.0.0.1:notaport",
        "ftp://user:pw@127.0.0.1:1",
        "socks5://user:pw@127.0.0.1:1",
    ],
)
def test_a_malformed_proxy_setting_is_a_proxy_error(proxy: str) -> None:
    c = FusebillClient(BASE, KEY, timeout=5, env={"HTTPS_PROXY": proxy})
    got = c.latch(1, "x")  # fails before connecting: nothing leaves the machine
    c.close()
    assert got.error == "proxy", got
    assert got.detail.startswith(f"proxy {proxy.split('://')[0]}://")
    assert "pw" not in got.detail


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert FusebillClient(BASE, KEY, timeout=1)._transport.route.proxies == {"https": PROXY}
    assert FusebillClient(BASE, KEY, timeout=1, env={})._transport.route.proxies == {}


# --- secrets ---------------------------------------------------------------------------------


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        # not even a recognisable piece of it (a cut must not leave half a key)
        assert not any(KEY[:n] in text for n in range(10, len(KEY)))


def test_connection_error_text_with_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    exc = requests.exceptions.ConnectionError(
        f"HTTPSConnectionPool: Max retries exceeded (Authorization: Basic {KEY}) refused"
    )
    got = latch(client, requests_mock, exc=exc)
    assert got.error == "connection" and "refused" in got.detail
    assert_no_key(got.detail, repr(got), repr(client))


def test_connection_error_with_the_key_at_the_cut_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    for pad in range(180, 205):
        exc = requests.exceptions.ConnectionError("x" * pad + KEY + " and more")
        got = latch(client, requests_mock, exc=exc)
        assert_no_key(got.detail, repr(got))
        assert len(got.detail) <= 200


def test_timeout_and_proxy_errors_carry_no_key(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    for exc in (
        requests.exceptions.ReadTimeout(f"read timed out; header Basic {KEY}"),
        requests.exceptions.ProxyError(f"407 for Basic {KEY}"),
    ):
        got = latch(client, requests_mock, exc=exc)
        assert_no_key(got.detail, repr(got))


@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 500])
def test_an_answer_echoing_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    got = latch(
        client,
        requests_mock,
        status_code=status,
        json=error_body(status, f"Invalid API key '{KEY}'") | {KEY: [f"Basic {KEY}"]},
        headers={"X-Echo": f"Basic {KEY}"},
    )
    assert_no_key(repr(got), classify_latch(got, "0909909").message)


def test_a_text_answer_echoing_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    got = latch(client, requests_mock, status_code=401, text=f"<h1>Unauthorized</h1> Basic {KEY}")
    assert "Unauthorized" in got.body
    assert_no_key(repr(got), classify_latch(got, "0909909").message)


def test_client_repr_does_not_show_the_key(client: FusebillClient) -> None:
    assert_no_key(repr(client), str(client))
    assert client.redact(f"a {KEY} b") == "a [redacted] b"


def test_a_short_key_does_not_mangle_other_words(requests_mock: rm.Mocker) -> None:
    c = FusebillClient(BASE, "bro", timeout=5, env={})
    requests_mock.post(LATCH, exc=requests.exceptions.ChunkedEncodingError("Connection broken"))
    got = c.latch(1, "x")
    assert got.detail.endswith("Connection broken")
    requests_mock.post(LATCH, status_code=401, json={"Message": "key bro rejected; Basic bro"})
    assert c.latch(1, "x").body == {"Message": "key [redacted] rejected; Basic [redacted]"}
    c.close()


# --- the redaction rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        ("bro", "Connection broken", "Connection broken"),
        ("bro", "Basic bro", f"Basic {MARK}"),
        ("bro", "bro", MARK),
        ("bro", "(bro), 'bro'; bro.", f"({MARK}), '{MARK}'; {MARK}."),
        ("bro", "x_bro-y", f"x_{MARK}-y"),  # only letters and digits join a word
        ("bro", "abro bro2 Bro", "abro bro2 Bro"),
        ("a.b", "axb a.b", f"axb {MARK}"),  # the key is text, not a pattern
        ("1234567", "x1234567", "x1234567"),
        ("12345678", "x12345678y", f"x{MARK}y"),  # 8 or more: everywhere
        (KEY, f"Basic{KEY}{KEY}", f"Basic{MARK}{MARK}"),
        ("", "anything", "anything"),
    ],
)
def test_redaction_rule(secret: str, text: str, expected: str) -> None:
    assert Redactor(secret)(text) == expected


@given(
    st.text("abcXYZ019", min_size=1, max_size=7),
    st.text("abc019", min_size=1, max_size=5),
    st.text(" .,;'", max_size=3),
)
def test_a_short_key_inside_another_word_is_left_alone(secret: str, glue: str, gap: str) -> None:
    """The rule's other half: under 8 characters, only a whole word is the key."""
    text = f"{glue}{secret}{gap}"
    assert Redactor(secret)(text) == text


@given(st.text(min_size=8, max_size=20), st.text(max_size=30), st.text(max_size=30))
def test_a_long_key_never_survives(secret: str, before: str, after: str) -> None:
    assert secret not in Redactor(secret)(before + secret + after) or secret in MARK


def test_scrub_walks_json() -> None:
    scrub = Redactor(KEY).scrub
    value = {"a": [KEY, {KEY: 1}], "b": 2, "c": None, "d": f"x{KEY}"}
    assert scrub(value) == {"a": [MARK, {MARK: 1}], "b": 2, "c": None, "d": f"x{MARK}"}
    assert repr(Redactor(KEY)) == "Redactor(...)"
