"""Where the key and the URLs come from: the real environment over a ``.env`` file, and
the checks a base URL must pass before anything is sent."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import SecretStr

from batch_latch.errors import ConfigError
from batch_latch.fusebill.proxies import proxy_secrets
from batch_latch.fusebill.redact import Redactor, shown_url

DEFAULT_BASE_URL = "https://secure.fusebill.com/v1"
KEY_VARIABLE = "FUSEBILL_API_KEY"
URL_VARIABLE = "FUSEBILL_BASE_URL"
NOTIFY_VARIABLE = "BATCH_LATCH_NOTIFY_URL"

# What a base URL may not hold, and the character that gives it away (checked first, as a
# string: a password may hold characters that make the URL unparsable).
_URL_EXTRAS = (
    ("credentials (user:password@)", "@"),
    ("a query (?…)", "?"),
    ("a fragment (#…)", "#"),
)


def redactor(env: Mapping[str, str], key: str = "") -> Redactor:
    """Every secret this environment holds out of a text: the API key (given, or the
    environment's), proxy and URL credentials. Errors and kept tracebacks go through it."""
    own = env.get(KEY_VARIABLE, "").strip()
    return Redactor(key, also=(own, *proxy_secrets(env)))


def environment(cwd: Path | None = None) -> dict[str, str]:
    """``.env`` in the working directory, overridden by the real environment."""
    values: dict[str, str] = {}
    dotenv = (cwd or Path.cwd()) / ".env"
    if dotenv.is_file():
        try:
            _check_dotenv(dotenv)
            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {dotenv}: {exc}") from None
    values.update(os.environ)
    return values


def _check_dotenv(path: Path) -> None:
    """One line naming the first line of ``.env`` that is not ``NAME=value`` (python-dotenv
    would log a warning for it, twice, and go on without the key)."""
    from dotenv.parser import parse_stream

    with path.open(encoding="utf-8") as handle:
        for binding in parse_stream(handle):
            if binding.error:
                line = binding.original.line
                raise ConfigError(
                    f"{path} line {line} is not NAME=value: write it as NAME=value, a "
                    "comment starting with #, or a blank line (its text is not shown: it may "
                    "hold the key)"
                )


def base_url(env: Mapping[str, str]) -> str:
    """Fusebill's URL, https only; plain http is allowed for loopback rehearsals. A user
    name or password, a query or a fragment is refused: the key header is the only
    credential that may travel (requests would send ``user:pass@`` as Basic auth instead)."""
    url = (env.get(URL_VARIABLE) or DEFAULT_BASE_URL).strip().rstrip("/")
    rest = url.partition("://")[2] or url
    extras = [what for what, mark in _URL_EXTRAS if mark in rest]
    if extras:
        why = f"; the key in {KEY_VARIABLE} is the only credential sent" if "@" in rest else ""
        raise ConfigError(
            f"{URL_VARIABLE} must be the API's address alone, without {' or '.join(extras)}: "
            f"{shown_url(url)}{why}"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{URL_VARIABLE} is not a valid URL: {url!r}") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and is_loopback(host):
        return url
    if parts.scheme == "http":
        raise ConfigError(
            f"{URL_VARIABLE} must use https:// (plain http is allowed only for localhost): {url}"
        )
    raise ConfigError(f"{URL_VARIABLE} must be an https:// URL, got {url!r}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(env: Mapping[str, str]) -> SecretStr:
    key = env.get(KEY_VARIABLE, "")
    if not key.strip():
        raise ConfigError(
            f"{KEY_VARIABLE} is not set: put your Fusebill API key in the environment or in a "
            ".env file (see .env.example); --dry-run needs no key"
        )
    # Printable ASCII only: a pasted no-break space or em dash cannot go into an HTTP header
    # (it would fail every request instead of stopping here).
    if not all(33 <= ord(c) <= 126 for c in key):
        raise ConfigError(
            f"{KEY_VARIABLE} contains spaces, line breaks, control or non-ASCII characters; "
            "copy the key again exactly as Fusebill shows it"
        )
    return SecretStr(key)
