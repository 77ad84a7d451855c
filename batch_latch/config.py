"""Settings for one run: options from the command line, key and base URL from the environment.

The key is a ``pydantic.SecretStr`` from the moment it is read, so a stray ``repr`` or log
line shows ``**********``, never the key.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import SecretStr

from batch_latch.errors import ConfigError

DEFAULT_BASE_URL = "https://secure.fusebill.com/v1"
KEY_VARIABLE = "FUSEBILL_API_KEY"
URL_VARIABLE = "FUSEBILL_BASE_URL"


@dataclass(frozen=True)
class RunSettings:
    input: Path
    out: Path
    dry_run: bool = False
    sheet: str | None = None
    fusebill_column: str | None = None
    geotab_column: str | None = None
    rate: float = 10.0
    workers: int = 8
    max_attempts: int = 5
    timeout: float = 30.0
    max_requests: int | None = None
    fresh: bool = False
    retry_not_found: bool = False
    allow_shared_geotab_id: bool = False
    progress: bool = True
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None


def environment(cwd: Path | None = None) -> dict[str, str]:
    """``.env`` in the working directory, overridden by the real environment."""
    values: dict[str, str] = {}
    dotenv = (cwd or Path.cwd()) / ".env"
    if dotenv.is_file():
        try:
            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {dotenv}: {exc}") from None
    values.update(os.environ)
    return values


def base_url(env: Mapping[str, str]) -> str:
    """Fusebill's URL, https only; plain http is allowed for loopback rehearsals."""
    url = (env.get(URL_VARIABLE) or DEFAULT_BASE_URL).strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{URL_VARIABLE} is not a valid URL: {url!r}") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    if parts.scheme == "http":
        raise ConfigError(
            f"{URL_VARIABLE} must use https:// (plain http is allowed only for localhost): {url}"
        )
    raise ConfigError(f"{URL_VARIABLE} must be an https:// URL, got {url!r}")


def _is_loopback(host: str) -> bool:
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
