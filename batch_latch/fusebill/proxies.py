"""Proxies and CA bundles from the environment: every variable the tool's HTTP reads, in
one place (contract v3, "Configuration").

- ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, each in lower or upper
  case: the lower-case one wins when both are set, even empty (as in curl); an empty value
  is unset. ``NO_PROXY`` is matched by requests (:func:`requests.utils.should_bypass_proxies`).
- ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then ``SSL_CERT_FILE``: the first that is
  set names the CA bundle; none, certifi's.

They are read from the mapping given (the process environment with ``.env`` under it), once,
into a :class:`Route`; the sessions built from it keep ``trust_env`` off, so requests itself
never looks at the process environment or ``~/.netrc``. An unusable proxy URL is refused
before anything is sent (:func:`check_proxies`), in one line naming the variable, its
credentials redacted; they are secrets of the command (:func:`proxy_secrets`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from batch_latch.errors import ConfigError
from batch_latch.fusebill.redact import shown_url, url_secrets

#: The proxy variables, each read in lower and upper case.
PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
#: The CA bundle variables, in the order they are looked at.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


@dataclass(frozen=True)
class Route:
    """How requests to one URL travel: through which proxy, trusting which CA bundle."""

    proxies: Mapping[str, str] = field(default_factory=dict)  # {scheme: proxy URL}; {}: direct
    verify: str | bool = True  # a CA bundle's path, or True for certifi's
    ca_note: str = ""  # what is trusted, in words, for a TLS failure's detail
    ca_problem: str = ""  # a CA variable naming no file: nothing may be sent

    def shown_proxies(self) -> str:
        """The proxies as ``scheme://host:port``, credentials redacted, for an error line."""
        return ", ".join(shown_proxy(p) for p in self.proxies.values())


def route_for(url: str, env: Mapping[str, str] | None = None) -> Route:
    """The :class:`Route` for ``url`` from ``env`` (default: the process environment)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    verify, note, problem = ca_bundle(environ)
    return Route(proxies_for(url, environ), verify, note, problem)


def _lookup(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """(the variable read, its value stripped) for ``name``: lower case wins over upper case,
    even when it is empty; "" when neither is set."""
    lower = name.lower()
    variable = lower if lower in env else name.upper()
    return variable, (env.get(variable) or "").strip()


def proxies_for(url: str, env: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: proxy}`` for ``url`` from ``*_PROXY`` and ``NO_PROXY``; ``{}`` for none.

    ``NO_PROXY`` goes to :func:`requests.utils.should_bypass_proxies`, lower-cased (host
    names have no case) and with ``*.`` read as ``.`` (the form Windows' proxy exceptions
    use). requests sets ``no_proxy`` in ``os.environ`` for the moment of that call: a route
    is made once, by the thread that builds a client or a notifier, never per request."""
    scheme = urlsplit(url).scheme
    proxy = _lookup(env, f"{scheme}_proxy")[1] or _lookup(env, "all_proxy")[1]
    if not proxy:
        return {}
    no_proxy = _lookup(env, "no_proxy")[1].lower()
    if no_proxy:
        from requests.utils import should_bypass_proxies

        entries = (e.strip() for e in no_proxy.split(","))
        no_proxy = ",".join("." + e[2:] if e.startswith("*.") else e for e in entries)
        if should_bypass_proxies(url, no_proxy):
            return {}
    return {scheme: proxy}


def ca_bundle(env: Mapping[str, str]) -> tuple[str | bool, str, str]:
    """(verify, a note on what is trusted, a problem with the setting or "")."""
    for name in CA_VARIABLES:
        value = (env.get(name) or "").strip()
        if value:
            if not os.path.exists(value):
                return True, "", f"{name} names {value}, which does not exist"
            return value, f"trusting {value} from {name}", ""
    return True, "trusting the bundled certifi CA list; see REQUESTS_CA_BUNDLE", ""


def proxy_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials of every proxy variable in ``env``, lower and upper case (the one not
    used too: it is still a secret)."""
    found: list[str] = []
    for name in PROXY_VARIABLES:
        for variable in (name, name.upper()):
            found.extend(url_secrets(env.get(variable) or ""))
    return tuple(found)


def shown_proxy(url: str) -> str:
    """A proxy URL as ``scheme://host:port``, its user and password redacted (even when it
    is malformed: all up to its last ``@`` is hidden)."""
    scheme, _, rest = shown_url(url if "://" in url else f"http://{url}").partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


# --- judged before anything is sent ----------------------------------------------------------


def check_proxies(env: Mapping[str, str]) -> None:
    """Each proxy variable that is set (lower case wins, as in curl) is a URL requests can
    use, else :class:`ConfigError`: one line naming the variable, its password redacted."""
    for name in PROXY_VARIABLES:
        variable, value = _lookup(env, name)
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
