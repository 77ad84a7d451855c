"""What an answer outside 2xx means and says, in full: the stop for a TLS, proxy or redirect
answer (each names what to check), a failed connection or a timeout, the status range each
status falls in, and the few words that describe a body. The words are the contract's "one
clear line" for ops; each is pinned whole here, written out, not built from the code."""

from __future__ import annotations

import pytest

from batch_latch.fusebill.answers import (
    Meaning,
    Reply,
    ReplyError,
    Verdict,
    base_of,
    describe,
    error_text,
    host_port,
    outside_2xx,
)
from batch_latch.vocab import ErrorKey, StopReason

URL = "https://secure.fusebill.com/v1/customers/42"
BASE = "https://secure.fusebill.com/v1"


def stopped(reason: StopReason, message: str) -> Verdict:
    return Verdict(Meaning.STOP, message, reason, stop=reason)


def test_a_wrong_version_number_handshake_says_the_server_may_speak_http() -> None:
    for detail in ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "ssl: wrong_version_number"):
        got = outside_2xx(Reply(None, error=ReplyError.TLS, detail=detail, url=URL))
        assert got == stopped(
            StopReason.TLS,
            "TLS handshake with https://secure.fusebill.com/v1 failed (WRONG_VERSION_NUMBER): "
            "the server may speak http, not https; check FUSEBILL_BASE_URL's scheme and port",
        )


def test_a_failed_certificate_check_names_the_ca_variables() -> None:
    detail = "certificate verify failed: self-signed certificate in certificate chain"
    got = outside_2xx(Reply(None, error=ReplyError.TLS, detail=detail, url=URL))
    assert got == stopped(
        StopReason.TLS,
        "TLS certificate check failed for https://secure.fusebill.com/v1: certificate verify "
        "failed: self-signed certificate in certificate chain. If a proxy or your network "
        "inspects TLS, set REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) to its CA certificate file",
    )
    unnamed = outside_2xx(Reply(None, error=ReplyError.TLS, detail="x"))
    assert unnamed is not None and "TLS certificate check failed for the API: x." in unnamed.message


def test_a_proxy_refusal_names_the_proxy_variables() -> None:
    got = outside_2xx(Reply(None, error=ReplyError.PROXY, detail="tunnel: 403 Forbidden", url=URL))
    assert got == stopped(
        StopReason.PROXY,
        "the proxy refused the request to https://secure.fusebill.com/v1/customers/42 (tunnel: "
        "403 Forbidden): check HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (and the proxy's "
        "credentials) and NO_PROXY",
    )
    asked = outside_2xx(Reply(407))
    assert asked == stopped(
        StopReason.PROXY,
        "the proxy refused the request to the API (HTTP 407 Proxy Authentication Required): "
        "check HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (and the proxy's credentials) and NO_PROXY",
    )


def test_no_answer_is_a_retry_that_may_have_landed_named_timeout_or_connection() -> None:
    timed_out = outside_2xx(Reply(None, error=ReplyError.TIMEOUT, detail="read 30 s"))
    assert timed_out == Verdict(
        Meaning.RETRYABLE, "timed out: read 30 s", ErrorKey.TIMEOUT, ambiguous=True
    )
    cut = outside_2xx(Reply(None, error=ReplyError.CONNECTION, detail="reset by peer"))
    assert cut == Verdict(
        Meaning.RETRYABLE, "connection failed: reset by peer", ErrorKey.CONNECTION, ambiguous=True
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (299, None),
        (300, Meaning.STOP),
        (301, Meaning.STOP),
        (399, Meaning.STOP),
        (400, Meaning.REJECTED),
        (500, Meaning.RETRYABLE),
    ],
)
def test_each_status_falls_in_its_range(status: int, kind: Meaning | None) -> None:
    got = outside_2xx(Reply(status, url=URL))
    assert (got.kind if got else None) is kind


def test_a_redirect_is_a_stop_that_names_where_it_leads_and_is_never_followed() -> None:
    moved = outside_2xx(Reply(301, headers={"location": "https://new.example/v1"}, url=URL))
    assert moved == stopped(
        StopReason.REDIRECT,
        "https://secure.fusebill.com/v1/customers/42 answered 301, a redirect to "
        "https://new.example/v1; redirects are never followed (the API key must not travel): "
        "set FUSEBILL_BASE_URL to the final URL",
    )
    bare = outside_2xx(Reply(302))
    assert bare == stopped(
        StopReason.REDIRECT,
        "the API answered 302, a redirect without a Location; redirects are never followed "
        "(the API key must not travel): set FUSEBILL_BASE_URL to the final URL",
    )


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (None, None, "an empty body"),
        ("  \n", None, "an empty body"),
        ("x" * 10, ReplyError.TOO_LARGE, "an answer over 1 MiB (not read)"),
        ("<html><title> Sign\n in </title></html>", None, "an HTML page ('Sign in')"),
        ("<html><body>no title</body></html>", None, "an HTML page"),
        ("<title></title>", None, "an HTML page"),
        ("not   json\tat all", None, "text that is not JSON ('not json at all')"),
        ("y" * 100, None, f"text that is not JSON ({'y' * 80!r})"),
        ({}, None, "a JSON object without the customer's fields (keys: none)"),
        (
            {k: 1 for k in "abcdefgh"},
            None,
            "a JSON object without the customer's fields (keys: a, b, c, d, e, f)",
        ),
        ([1, 2], None, "JSON that is not an object (list)"),
        (7, None, "JSON that is not an object (int)"),
    ],
)
def test_a_body_that_proves_nothing_is_described_in_a_few_words(
    body: object, error: ReplyError | None, words: str
) -> None:
    assert describe(Reply(200, body, error=error)) == words


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"Errors": [{"Key": "Api Error", "Value": "one"}, {"Key": "Other", "Value": "two"}]},
            ("one; two", "Api Error"),
        ),
        ({"Errors": [{"Value": "no key"}]}, ("no key", "")),
        ({"Errors": [{"Key": "k", "Value": ""}], "Message": "fallback"}, ("fallback", "")),
        ({"message": "lower"}, ("lower", "")),
        ({"error": "err"}, ("err", "")),
        ({"detail": "det"}, ("det", "")),
        ({"Message": 5, "detail": "text only"}, ("text only", "")),
        ({"Errors": "not a list", "Message": "m"}, ("m", "")),
        ("  spaced \n out  ", ("spaced out", "")),
        ("z" * 300, ("z" * 200, "")),
        (None, ("", "")),
    ],
)
def test_an_error_body_gives_its_message_and_key(body: object, expected: tuple[str, str]) -> None:
    assert error_text(body) == expected


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://h.example/v1/customers/42", "https://h.example/v1"),
        ("https://h.example/v1/customers?query=id:in:1|2", "https://h.example/v1"),
        ("https://h.example/v1/Geotab/LatchCustomer/42/X", "https://h.example/v1"),
        ("https://h.example/customers-api/v1/customers", "https://h.example/customers-api/v1"),
        ("https://h.example/v1/other?x=1", "https://h.example/v1/other"),
        ("", ""),
    ],
)
def test_a_message_names_the_base_url_not_the_route(url: str, base: str) -> None:
    assert base_of(url) == base


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("https://secure.fusebill.com/v1", "secure.fusebill.com:443"),
        ("http://127.0.0.1/v1", "127.0.0.1:80"),
        ("http://127.0.0.1:8765/v1", "127.0.0.1:8765"),
        ("https://[::1]:9443/v1", "[::1]:9443"),
        ("https://[::1]/v1", "[::1]:443"),
        ("http://h.example:99999/v1", "the API"),
    ],
)
def test_host_port_names_the_port_the_scheme_implies(url: str, where: str) -> None:
    assert host_port(url) == where
