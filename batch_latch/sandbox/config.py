"""Every knob of the sandbox in one frozen value, checked once when it is made."""

from __future__ import annotations

import ipaddress
import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from .customers import MAX_FUSEBILL_ID
from .listing import CustomerList, ListHeaders
from .preset import check_preset, load_preset

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_PORT = 8765

Profile = Literal["live", "sandbox", "testdrive"]
ResetFormat = Literal["iso", "epoch", "http"]
RESET_FORMATS: tuple[ResetFormat, ...] = ("iso", "epoch", "http")
PresetSource = Mapping[int, str] | str | os.PathLike[str] | None


@dataclass(frozen=True)
class Limits:
    """Fusebill's documented request limits for one account type."""

    per_minute: int
    per_day: int


PROFILES: Mapping[str, Limits] = types.MappingProxyType(
    {
        "live": Limits(1_000, 180_000),
        "sandbox": Limits(50, 5_000),
        "testdrive": Limits(10, 500),
    }
)

_RATES = ("fail_rate", "drop_rate", "html_200_rate", "empty_200_rate", "applied_then_504_rate")


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob, frozen so a running server cannot be reconfigured under a test's feet.

    ``preset`` takes a CSV path or a mapping; either way it holds a read-only mapping once
    the config exists, so a bad preset fails here, at start-up, not mid-rehearsal.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = DEFAULT_API_KEY
    profile: Profile = "live"
    rate_limit: float | None = None
    day_limit: int | None = None
    retry_after: bool = False
    retry_after_seconds: int | None = None
    minute_seconds: float = 60.0
    reset_format: ResetFormat = "iso"
    latency_ms: int = 0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    stall_first_ms: int = 0
    relatch_status: int | None = None
    mismatch_ids: frozenset[int] = frozenset()
    force_status: Mapping[int, int] = field(default_factory=dict, hash=False)
    seed: int | None = None
    log_path: str | os.PathLike[str] | None = None
    preset: PresetSource = field(default=None, hash=False)
    hide_geotab_id: bool = False
    customer_list: CustomerList = CustomerList.FULL
    list_headers: ListHeaders = ListHeaders.DOCS
    tls_cert: str | os.PathLike[str] | None = None
    tls_key: str | os.PathLike[str] | None = None
    html_200_rate: float = 0.0
    empty_200_rate: float = 0.0
    applied_then_504_rate: float = 0.0
    drip_seconds: float = 0.0
    drip_ids: frozenset[int] = frozenset()
    redirect_to: str | None = None

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its own set or dict later cannot change a running server.
        object.__setattr__(self, "mismatch_ids", frozenset(self.mismatch_ids))
        object.__setattr__(self, "drip_ids", frozenset(self.drip_ids))
        object.__setattr__(self, "force_status", types.MappingProxyType(dict(self.force_status)))
        object.__setattr__(self, "preset", _preset_mapping(self.preset))
        listing = _one_of(CustomerList, self.customer_list, "customer_list")
        object.__setattr__(self, "customer_list", listing)
        headers = _one_of(ListHeaders, self.list_headers, "list_headers")
        object.__setattr__(self, "list_headers", headers)
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid SandboxConfig: " + "; ".join(problems))

    @property
    def limits(self) -> Limits:
        return PROFILES[self.profile]

    @property
    def preset_pairs(self) -> Mapping[int, str]:
        """The customers that start latched (empty without a preset)."""
        return self.preset if isinstance(self.preset, Mapping) else {}

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def _preset_mapping(preset: PresetSource) -> Mapping[int, str] | None:
    if preset is None:
        return None
    if isinstance(preset, Mapping):
        pairs = dict(preset)
        check_preset(pairs)
    else:
        pairs = load_preset(preset)
    return types.MappingProxyType(pairs)


_Mode = TypeVar("_Mode", CustomerList, ListHeaders)


def _one_of(kind: type[_Mode], value: _Mode | str, field: str) -> _Mode:
    """A mode, also from its name (``"no-geotab"``), so tests and the CLI can pass text."""
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(mode.value for mode in kind)
        raise ValueError(
            f"invalid SandboxConfig: {field} must be one of {names}, got {value!r}"
        ) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): the sandbox has no real
    security, so it listens nowhere else."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config_problems(c: SandboxConfig) -> list[str]:
    problems: list[str] = []
    if not 0 <= c.port <= 65535:
        problems.append(f"port must be 0..65535, got {c.port}")
    if c.profile not in PROFILES:
        problems.append(f"profile must be one of {', '.join(PROFILES)}, got {c.profile!r}")
    if c.day_limit is not None and c.day_limit < 1:
        problems.append(f"day_limit must be at least 1, got {c.day_limit}")
    if c.rate_limit is not None and not (math.isfinite(c.rate_limit) and c.rate_limit > 0):
        problems.append(f"rate_limit must be a positive number, got {c.rate_limit}")
    if not (math.isfinite(c.minute_seconds) and c.minute_seconds > 0):
        problems.append(f"minute_seconds must be a positive number, got {c.minute_seconds}")
    if c.reset_format not in RESET_FORMATS:
        problems.append(f"reset_format must be one of {', '.join(RESET_FORMATS)}")
    if c.retry_after_seconds is not None and not 0 <= c.retry_after_seconds <= 10**9:
        problems.append("retry_after_seconds must be 0..1000000000")
    for name in ("latency_ms", "stall_first_ms"):
        if getattr(c, name) < 0:
            problems.append(f"{name} must be >= 0")
    for name in _RATES:
        if not 0.0 <= getattr(c, name) <= 1.0:
            problems.append(f"{name} must be between 0 and 1")
    if c.relatch_status is not None and not 400 <= c.relatch_status <= 599:
        problems.append(f"relatch_status must be 400..599, got {c.relatch_status}")
    for fid, status in c.force_status.items():
        if not 400 <= status <= 599:
            problems.append(f"force_status for {fid} must be 400..599, got {status}")
    if not valid_key(c.api_key):
        problems.append("api_key must be 1..1024 printable ASCII characters without spaces")
    return problems + _network_problems(c)


def _network_problems(c: SandboxConfig) -> list[str]:
    problems: list[str] = []
    if not is_loopback(c.host):
        problems.append(
            f"host must be a loopback address (127.0.0.1, ::1 or localhost), got {c.host!r}: "
            "the sandbox has no real security"
        )
    if (c.tls_cert is None) != (c.tls_key is None):
        problems.append("tls_cert and tls_key go together")
    if not (math.isfinite(c.drip_seconds) and 0 <= c.drip_seconds <= 60):
        problems.append(f"drip_seconds must be 0..60, got {c.drip_seconds}")
    if any(not 1 <= fid <= MAX_FUSEBILL_ID for fid in c.drip_ids):
        problems.append("drip_ids must be Fusebill customer ids")
    if c.redirect_to is not None and not valid_redirect(c.redirect_to):
        problems.append(f"redirect_to must be an http:// or https:// URL, got {c.redirect_to!r}")
    return problems


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 1024 and all("!" <= ch <= "~" for ch in key)


def valid_redirect(url: str) -> bool:
    """An absolute http(s) URL with a host and nothing that could split a header."""
    if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
