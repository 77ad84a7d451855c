"""Proxy URLs judged before anything is sent (contract v3, "Configuration"): an unusable
one is one line naming the variable, and its password is never in it."""

from __future__ import annotations

import importlib.util

import pytest

from batch_latch.errors import ConfigError
from batch_latch.fusebill.proxies import check_proxies


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
