"""Proxy URLs from the environment, judged before anything is sent (contract v3,
"Configuration"): one that requests or urllib3 could not use is one line naming the
variable, with its credentials redacted, never a failure later that quotes the URL."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from batch_latch.errors import ConfigError
from batch_latch.fusebill.redact import PROXY_VARIABLES, shown_url

_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def check_proxies(env: Mapping[str, str]) -> None:
    """Each proxy variable that is set (lower case wins, as in curl) is a URL requests can
    use, else :class:`ConfigError`: one line naming the variable, its password redacted."""
    for name in PROXY_VARIABLES:
        value = env.get(name)
        variable = name if value is not None else name.upper()
        value = (env.get(variable) or "").strip()
        problem = _proxy_problem(value) if value else None
        if problem:
            raise ConfigError(
                f"{variable} is not a proxy URL this tool can use ({problem}): "
                f"{shown_url(value)}; write it as http://host:port or "
                "http://user:password@host:port"
            )


def _proxy_problem(value: str) -> str | None:
    """What is wrong with a proxy URL, in words that never quote it; None when usable."""
    if "://" not in value and "@" in value:
        return "no scheme before the user name"
    text = value if "://" in value else f"http://{value}"  # as requests reads host:port
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in _PROXY_SCHEMES:
        return "the scheme must be http://, https:// or socks5://"
    cut = re.search(r"[/?#]", rest)
    if cut and "@" in rest[cut.start() :]:
        return "/ ? # @ in the user name or password must be percent-encoded: %2F %3F %23 %40"
    port = re.search(r":(\d+)$", re.split(r"[/?#]", rest.rpartition("@")[2])[0])
    if port and not 1 <= int(port.group(1)) <= 65535:
        return "the port must be 1 to 65535"
    try:
        from urllib3.util import parse_url  # the parser requests hands a proxy URL to

        parsed = parse_url(text)
        host = urlsplit(text).hostname
    except Exception:  # whatever the parsers raise (TypeError too), it is unusable
        return "its host or port cannot be read"
    if not host or not parsed.host:
        return "no host"
    if scheme.lower().startswith("socks") and importlib.util.find_spec("socks") is None:
        return "a SOCKS proxy needs PySocks: pip install 'requests[socks]'"
    return None
