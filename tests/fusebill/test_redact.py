"""One redaction for every secret: the key and the proxies' credentials (contract v3,
"Configuration": a proxy URL's password is never shown, whatever is wrong with the URL).

Pure tests of :mod:`batch_latch.fusebill.redact`, then the client's failure texts for proxy
URLs that urllib3 and requests cannot use (built here without the settings' checks, as if
they had let one through): none shows the password."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_latch.fusebill.answers import classify_latch
from batch_latch.fusebill.client import FusebillClient
from batch_latch.fusebill.redact import MARK, Redactor, shown_url, url_secrets

KEY = "sk_live_SECRET123"
PASSWORD = "pr0xyPW"  # under 8 characters: the short-secret rule applies


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("http://puser:pr0xyPW@proxy:3128", {"puser:pr0xyPW", "pr0xyPW"}),
        ("http://tok3n@proxy:3128", {"tok3n"}),  # a lone token is the secret
        ("puser:pr0xyPW@proxy:3128", {"puser:pr0xyPW", "pr0xyPW"}),  # no scheme
        ("http://u:p%40ss@proxy", {"u:p%40ss", "u:p@ss", "p%40ss", "p@ss"}),  # as typed, decoded
        ("http://proxy:3128", set()),
        ("", set()),
    ],
)
def test_url_secrets(url: str, secrets: set[str]) -> None:
    assert set(url_secrets(url)) == secrets


def test_a_password_cut_by_an_unencoded_slash_is_redacted_piece_by_piece() -> None:
    found = set(url_secrets("http://puser:pr/0xyPW@proxy:1"))
    assert {"puser:pr/0xyPW", "pr/0xyPW", "puser:pr", "pr", "0xyPW"} <= found
    redactor = Redactor("", also=found)
    assert redactor("Failed to parse: 'puser:pr' is not a valid host") == (
        f"Failed to parse: '{MARK}' is not a valid host"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Failed to parse: http://puser:pr0xyPW@127.0.0.1:99999",
        "Failed to parse: 'puser:pr0xyPW@127.0.0.1:1' is not a valid host",
        "407 for pr0xyPW",
        "(pr0xyPW)",
    ],
)
def test_one_redactor_hides_the_key_and_the_proxy_password(text: str) -> None:
    redactor = Redactor(KEY, also=url_secrets("http://puser:pr0xyPW@127.0.0.1:99999"))
    got = redactor(f"{text} Basic {KEY}")
    assert PASSWORD not in got and KEY not in got and MARK in got


def test_any_urls_userinfo_is_redacted_even_unknown() -> None:
    redactor = Redactor(KEY)
    assert redactor("via http://someone:hunter2@proxy:3128 failed") == (
        f"via http://{MARK}@proxy:3128 failed"
    )
    assert redactor("mail bob@example.com, see https://example.com/a") == (
        "mail bob@example.com, see https://example.com/a"
    )


def test_a_short_proxy_password_leaves_other_words_alone() -> None:
    redactor = Redactor(KEY, also=url_secrets("http://u:on@proxy"))
    assert redactor("Connection broken; u:on") == f"Connection broken; {MARK}"


@given(st.text(max_size=20), st.text(max_size=20))
def test_the_password_never_survives(before: str, after: str) -> None:
    redactor = Redactor(KEY, also=url_secrets("http://puser:pr0xyPW@p:1"))
    got = redactor(f"{before}pr0xyPW{after}")
    assert "puser:pr0xyPW" not in got
    if not (before[-1:].isalnum() and before[-1:].isascii()) and not (
        after[:1].isalnum() and after[:1].isascii()
    ):
        assert PASSWORD not in got or PASSWORD in MARK


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host/v1", f"https://{MARK}@host/v1"),
        ("https://host/v1?token=abc#frag", "https://host/v1"),
        ("https://user:pa#ss@host:99999/v1?x", f"https://{MARK}@host:99999/v1"),
        ("http://puser:pr/0xyPW@127.0.0.1:1", f"http://{MARK}@127.0.0.1:1"),
        ("puser:pr0xyPW@127.0.0.1:1", f"{MARK}@127.0.0.1:1"),
        ("user:pass://host", f"{MARK}://host"),
        ("http://127.0.0.1:3128", "http://127.0.0.1:3128"),
    ],
)
def test_shown_url_hides_credentials_query_and_fragment(url: str, shown: str) -> None:
    assert shown_url(url) == shown


# --- the client's failures with proxy URLs it cannot use --------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound, never listening: a connection is refused


@pytest.mark.parametrize(
    "proxy",
    [
        "http://puser:pr0xyPW@127.0.0.1:99999",  # the fault lab's: "Failed to parse: …"
        "http://puser:pr0xyPW@127.0.0.1:abc",
        "puser:pr0xyPW@127.0.0.1:1",
        "ftp://puser:pr0xyPW@127.0.0.1:1",
        "socks5://puser:pr0xyPW@127.0.0.1:1",
        "http://puser:pr/0xyPW@127.0.0.1:1",
        "http://puser:pr0xyPW@127.0.0.1:{port}",  # refused connection
    ],
)
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_proxy_failures_never_show_the_password(
    proxy: str, variable: str, closed_port: int
) -> None:
    env = {variable: proxy.format(port=closed_port)}
    client = FusebillClient("https://localhost:9/v1", KEY, timeout=5, env=env)
    try:
        reply = client.customer(1)
        verdict = classify_latch(reply, "G1")
    finally:
        client.close()
    assert reply.error == "proxy", reply
    for text in (reply.detail, verdict.message, repr(reply), client.redact(proxy)):
        assert "pr0xyPW" not in text and "0xyPW" not in text and KEY not in text
        assert "puser:pr" not in text
    assert "127.0.0.1" in verdict.message and "HTTPS_PROXY" in verdict.message


LONG_KEY = "sk_live_0123456789abcdef"


@given(
    st.recursive(
        st.one_of(
            st.lists(
                st.sampled_from(
                    ["a", "é", "/", ":", "@", "\\", '"', "\n", "sk_live_", "0123", "bro"]
                )
            ).map("".join),
            st.sampled_from(
                [
                    LONG_KEY,
                    f"Basic {LONG_KEY}",
                    "bro",
                    "http://u:pw@proxy:3128",
                    "http://alice:hunter2@h/",
                    "x" * 9,
                ]
            ),
            st.integers(),
            st.none(),
        ),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.lists(st.sampled_from(["k", LONG_KEY[:9], LONG_KEY[9:], "@"]), max_size=3).map(
                    "".join
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    ),
    st.booleans(),
)
def test_a_body_spared_the_scrub_holds_nothing_the_scrub_would_change(
    value: object, ascii_only: bool
) -> None:
    """The client skips scrubbing a JSON object or list whose bytes ``spares``; then every
    text in it must be what the scrub leaves as it is (escaped or raw, keys and values)."""
    redact = Redactor(LONG_KEY, ("pw", "bro"))
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    if redact.spares(data):
        parsed = json.loads(data)
        assert redact.scrub(parsed) == parsed


@pytest.mark.parametrize(
    "body",
    [
        '{"geotabId": "sk_live_0123456789abcdef"}',  # the key itself
        '{"geotabId": "sk_live_0123456789abcde\\u0066"}',  # the key spelt with an escape
        '{"uri": "https://alice:hunter2@host/v1"}',  # any URL's credentials, even unknown ones
        '{"note": "a bro and a sister"}',  # a short secret: the scrub decides, word by word
    ],
)
def test_a_body_that_may_hold_a_secret_is_never_spared(body: str) -> None:
    assert not Redactor(LONG_KEY, ("pw", "bro")).spares(body.encode("utf-8"))
    assert not Redactor(LONG_KEY, ("pw", "bro")).spares(body.encode("utf-16"))


def test_an_ordinary_customer_object_is_spared() -> None:
    body = b'{"id": 42, "geotabId": "0909909", "uri": "https://h.example/v1/customers/42"}'
    assert Redactor(LONG_KEY, ("pw",)).spares(body)
