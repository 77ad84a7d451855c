"""Proxies and CA bundles from the environment (contract v3, "Configuration"): which proxy a
URL takes, NO_PROXY as requests reads it, the CA bundle's order; proxy URLs judged before
anything is sent: an unusable one is one line naming the variable, its password never in it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from batch_latch.errors import ConfigError
from batch_latch.fusebill.proxies import (
    ca_bundle,
    check_proxies,
    proxies_for,
    proxy_secrets,
    route_for,
    shown_proxy,
)

BASE = "https://fusebill.test/v1"
PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        (BASE, {}, {}),
        (BASE, {"HTTPS_PROXY": PROXY}, {"https": PROXY}),
        (BASE, {"https_proxy": PROXY}, {"https": PROXY}),
        (BASE, {"https_proxy": PROXY, "HTTPS_PROXY": "http://other:1"}, {"https": PROXY}),
        (BASE, {"https_proxy": "", "HTTPS_PROXY": PROXY}, {}),  # lower case wins, even empty
        (BASE, {"HTTP_PROXY": PROXY}, {}),  # http_proxy is for http:// URLs
        (BASE, {"ALL_PROXY": PROXY}, {"https": PROXY}),
        (BASE, {"all_proxy": PROXY, "HTTPS_PROXY": "http://p2:1"}, {"https": "http://p2:1"}),
        ("http://127.0.0.1:8080/v1", {"HTTP_PROXY": PROXY}, {"http": PROXY}),
        (BASE, {"HTTPS_PROXY": PROXY, "NO_PROXY": "fusebill.test"}, {}),
        (BASE, {"HTTPS_PROXY": PROXY, "no_proxy": ".fusebill.test"}, {}),  # curl: the domain too
        (BASE, {"HTTPS_PROXY": PROXY, "NO_PROXY": "other.test"}, {"https": PROXY}),
        (BASE, {"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, {}),
        (BASE, {"HTTPS_PROXY": PROXY, "no_proxy": "", "NO_PROXY": "*"}, {"https": PROXY}),
    ],
)  # fmt: skip
def test_proxies_come_from_the_standard_variables(
    url: str, env: dict[str, str], expected: dict[str, str]
) -> None:
    assert proxies_for(url, env) == expected


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("secure.fusebill.com", 443, "fusebill.com", True),
        ("secure.fusebill.com", 443, ".fusebill.com", True),
        ("fusebill.com", 443, ".fusebill.com", True),
        ("secure.fusebill.com", 443, "*.fusebill.com", True),  # read as .fusebill.com
        ("secure.fusebill.com", 443, "example.com, fusebill.com", True),
        ("secure.fusebill.com", 443, "FUSEBILL.COM", True),
        ("secure.fusebill.com", 443, "Secure.Fusebill.com:443", True),
        ("notfusebill.com", 443, "fusebill.com", False),
        ("fusebill.com.evil", 443, "fusebill.com", False),
        ("secure.fusebill.com", 443, "fusebill.com:443", True),
        ("secure.fusebill.com", 443, "fusebill.com:8443", False),
        ("secure.fusebill.com", 443, "*", True),
        ("localhost", 8080, "LOCALHOST:8080", True),
        ("localhost", 8080, "example.test,.localhost", True),
        ("127.0.0.1", 8080, "127.0.0.0/8", True),
        ("127.0.0.1", 8080, "127.0.0.1", True),
        ("127.0.0.1", 8080, "10.0.0.0/8,localhost", False),
        ("127.0.0.1", 8080, "127.0.0.1:9090", False),
        ("::1", 8080, "::1", True),
        ("localhost", 8080, "", False),
        ("localhost", 8080, " , ", False),
        # Forms the hand-written parser accepted and requests does not (docs/design.md):
        ("secure.fusebill.com", 443, "example.com,*", False),  # "*" only alone, as in curl
        ("secure.fusebill.com", 443, "*fusebill.com", False),  # "*" only before "."
        ("127.0.0.1", 8080, "127.0.0.1:8080", False),  # an IPv4 address with a port
        ("::1", 8080, "[::1]:8080", False),  # IPv6 in brackets, with or without a port
        ("::1", 8080, "[::1]", False),
        ("::1", 8080, "::1/128", False),  # an IPv6 range
    ],
)  # fmt: skip
def test_no_proxy_is_read_by_requests(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    url = f"https://{f'[{host}]' if ':' in host else host}:{port}/v1"
    env = {"HTTPS_PROXY": PROXY, "NO_PROXY": no_proxy}
    assert (proxies_for(url, env) == {}) is bypass


def test_no_proxy_leaves_the_process_environment_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("no_proxy", "process.test")
    env = {"HTTPS_PROXY": PROXY, "NO_PROXY": "fusebill.test"}
    assert proxies_for(BASE, env) == {}
    assert proxies_for("https://process.test/v1", env) == {"https": PROXY}
    assert os.environ["no_proxy"] == "process.test"


def test_ca_bundle_order_and_empty_values(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.pem", "b.pem", "c.pem"))
    for path in (a, b, c):
        path.write_text("x")
    assert ca_bundle({})[0] is True
    assert ca_bundle({"SSL_CERT_FILE": str(c)})[0] == str(c)
    assert ca_bundle({"CURL_CA_BUNDLE": str(b), "SSL_CERT_FILE": str(c)})[0] == str(b)
    everything = {"REQUESTS_CA_BUNDLE": str(a), "CURL_CA_BUNDLE": str(b), "SSL_CERT_FILE": str(c)}
    assert ca_bundle(everything)[:2] == (str(a), f"trusting {a} from REQUESTS_CA_BUNDLE")
    # An empty CURL_CA_BUNDLE once turned verification off in requests: here it is just unset.
    assert ca_bundle({"CURL_CA_BUNDLE": ""})[0] is True


def test_a_route_holds_the_proxies_and_the_ca_bundle(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    env = {"HTTPS_PROXY": "http://puser:pr0xyPW@proxy.corp:3128", "SSL_CERT_FILE": str(missing)}
    route = route_for(BASE, env)
    assert route.proxies == {"https": env["HTTPS_PROXY"]}
    assert route.shown_proxies() == "http://[redacted]@proxy.corp:3128"
    assert (route.verify, route.ca_problem) == (
        True,
        f"SSL_CERT_FILE names {missing}, which does not exist",
    )


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    for name in ("https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert route_for(BASE).proxies == {"https": PROXY}
    assert route_for(BASE, {}).proxies == {}


@pytest.mark.parametrize(
    ("proxy", "shown"),
    [
        ("http://puser:pr0xyPW@proxy.corp:3128/path", "http://[redacted]@proxy.corp:3128"),
        ("proxy.corp:3128", "http://proxy.corp:3128"),
        ("http://puser:pr/0xyPW@proxy.corp:3128", "http://[redacted]@proxy.corp:3128"),
    ],
)
def test_a_proxy_is_shown_without_its_credentials(proxy: str, shown: str) -> None:
    assert shown_proxy(proxy) == shown


def test_proxy_secrets_come_from_every_variable_in_both_cases() -> None:
    env = {
        "HTTPS_PROXY": "http://a:passA@p:1",
        "https_proxy": "http://b:passB@p:1",
        "HTTP_PROXY": "http://c:passC@p:1",
        "all_proxy": "http://d:passD@p:1",
        "NO_PROXY": "x:y@z",  # not a proxy URL
        "OTHER": "http://e:passE@p:1",
    }
    found = set(proxy_secrets(env))
    assert {"passA", "passB", "passC", "passD"} <= found
    assert not {"passE", "y"} & found


@pytest.mark.parametrize(
    ("proxy", "why"),
    [
        ("http://puser:pr0xyPW@127.0.0.1:99999", "the port must be 1 to 65535"),
        ("http://puser:pr0xyPW@127.0.0.1:0", "the port must be 1 to 65535"),
        ("http://puser:pr0xyPW@127.0.0.1:abc", "its host or port cannot be read"),
        ("http://puser:pr0xyPW@[::1:3128", "its host or port cannot be read"),
        ("http://puser:pr0xyPW@", "no host"),
        ("http://puser:pr0xyPW@:3128", "no host"),
        ("puser:pr0xyPW@127.0.0.1:3128", "no scheme"),
        ("ftp://puser:pr0xyPW@127.0.0.1:3128", "the scheme must be"),
        ("puser:pr0xyPW://127.0.0.1:3128", "the scheme must be"),
        ("http://puser:pr/0xyPW@127.0.0.1:3128", "percent-encoded"),
        ("http://puser:pr#0xyPW@127.0.0.1:3128", "percent-encoded"),
        ("socks5://puser:pr0xyPW@127.0.0.1:1080", "PySocks"),
    ],
)
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"])
def test_unusable_proxy_urls_are_refused_without_the_password(
    proxy: str, why: str, variable: str
) -> None:
    if why == "PySocks" and importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here: a SOCKS proxy is usable")
    with pytest.raises(ConfigError) as caught:
        check_proxies({variable: proxy})
    text = str(caught.value)
    assert text.startswith(f"{variable} is not a proxy URL this tool can use (")
    assert why in text.split("):")[0]
    assert "0xyPW" not in text and "puser" not in text and "\n" not in text
    assert "[redacted]" in text


@pytest.mark.parametrize(
    "proxy",
    [
        "http://127.0.0.1:3128",
        "http://puser:pr0xyPW@127.0.0.1:3128",
        "https://proxy.corp.example:443",
        "http://u:p%2Fss%40x@proxy.corp.example:8080",
        "proxy.corp.example:3128",  # requests reads it as http://
        "http://[::1]:3128",
    ],
)
def test_usable_proxy_urls_pass(proxy: str) -> None:
    check_proxies({"HTTPS_PROXY": proxy, "http_proxy": proxy, "ALL_PROXY": proxy})


def test_the_lower_case_variable_wins_as_in_curl() -> None:
    check_proxies({"https_proxy": "http://127.0.0.1:3128", "HTTPS_PROXY": "http://h:99999"})
    with pytest.raises(ConfigError, match=r"^https_proxy "):
        check_proxies({"https_proxy": "http://h:99999", "HTTPS_PROXY": "http://127.0.0.1:3128"})
