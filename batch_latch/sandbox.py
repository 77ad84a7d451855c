"""A local stand-in for Fusebill's API, so rehearsals, tests and benchmarks mean something.

It stands alone (nothing else from ``batch_latch`` is imported) so that a test or a benchmark
exercises the client against an independent implementation of the contract, not against
shared code.

What it imitates:

* Base path ``/v1``: ``POST /v1/Geotab/LatchCustomer``, ``POST /v1/Geotab/UnlatchCustomer``,
  ``GET /v1/customers/{id}``; paths match ignoring case (as ASP.NET routing does). Anything
  else is a 404 in Fusebill's error format
  ``{"ErrorId":0,"HttpStatusCode":404,"Errors":[{"Key":"Api Error","Value":"..."}]}``.
* Known customers: every id from ``KNOWN_ID_MIN`` (1,000,000) to ``KNOWN_ID_MAX`` (9,999,999)
  inclusive, plus ``EXTRA_CUSTOMER_IDS`` (12717595 and 671201, the ids in Fusebill's own
  example). Every other id gets 404. Nobody is latched at start.
* ``Authorization`` must be exactly ``"Basic " + api_key`` (default ``DEFAULT_API_KEY``, the
  sandbox's own key, never a real one), else 401.
* Limits per ``PROFILES`` (live 1,000/180,000, sandbox 50/5,000, testdrive 10/500 requests a
  minute/day), counted after authentication; minute windows are aligned to the wall clock,
  the day is the UTC day; ``rate_limit`` replaces the minute window by a token bucket.
  Requests answered 429 use up nothing. Every answer carries ``X-Rate-Limit-*`` headers.
* Faults for rehearsals: latency, random 5xx (nothing applied), dropped connections (applied,
  then no answer), a stalled first answer per customer (applied, answered late), a non-200
  answer on a repeated latch, a mismatching geotabId, forced statuses for chosen ids.

Unlike Fusebill's JSON parser, which accepts the unquoted keys of its own curl example, bodies
must be strict JSON with an integer ``fusebillId`` and a string ``geotabId``: the sandbox is
there to catch a client sending the wrong types. Unknown fields are ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import errno
import hmac
import http
import json
import math
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "EXTRA_CUSTOMER_IDS",
    "KNOWN_ID_MAX",
    "KNOWN_ID_MIN",
    "PROFILES",
    "Limits",
    "LoggedRequest",
    "Sandbox",
    "SandboxConfig",
    "config_from_args",
    "configure_parser",
    "format_reset",
    "is_known_customer",
    "serve",
]

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_PORT = 8765
KNOWN_ID_MIN = 1_000_000
KNOWN_ID_MAX = 9_999_999
EXTRA_CUSTOMER_IDS: frozenset[int] = frozenset({12_717_595, 671_201})
MAX_FUSEBILL_ID = 2**63 - 1
MAX_BODY_BYTES = 64 * 1024

Profile = Literal["live", "sandbox", "testdrive"]
ResetFormat = Literal["iso", "epoch", "http"]
RESET_FORMATS: tuple[ResetFormat, ...] = ("iso", "epoch", "http")


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

_FAULT_MESSAGES: Mapping[int, str] = {
    500: "An unexpected error has occurred. Please try again later.",
    502: "Bad Gateway: the upstream service did not answer.",
    503: "Service Unavailable: the service is temporarily overloaded.",
}
_FORCED_MESSAGES: Mapping[int, str] = {
    400: "Customer is not eligible for Geotab latching",
    401: "Invalid API key",
    403: "Forbidden",
    404: "Customer with id {id} not found.",
    408: "Request Timeout",
    409: "Customer {id} is locked by another operation",
    422: "Customer is not eligible for Geotab latching",
    429: "Rate limit exceeded",
}


def is_known_customer(fusebill_id: int) -> bool:
    """Whether the sandbox answers for this id instead of 404."""
    return KNOWN_ID_MIN <= fusebill_id <= KNOWN_ID_MAX or fusebill_id in EXTRA_CUSTOMER_IDS


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob, frozen so a running server cannot be reconfigured under a test's feet."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = DEFAULT_API_KEY
    profile: Profile = "live"
    rate_limit: float | None = None
    day_limit: int | None = None
    retry_after: bool = False
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

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its own set or dict later cannot change a running server.
        object.__setattr__(self, "mismatch_ids", frozenset(self.mismatch_ids))
        object.__setattr__(self, "force_status", types.MappingProxyType(dict(self.force_status)))
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid SandboxConfig: " + "; ".join(problems))

    @property
    def limits(self) -> Limits:
        return PROFILES[self.profile]


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
    for name in ("latency_ms", "stall_first_ms"):
        if getattr(c, name) < 0:
            problems.append(f"{name} must be >= 0")
    for name in ("fail_rate", "drop_rate"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            problems.append(f"{name} must be between 0 and 1")
    if c.relatch_status is not None and not 400 <= c.relatch_status <= 599:
        problems.append(f"relatch_status must be 400..599, got {c.relatch_status}")
    for fid, status in c.force_status.items():
        if not 400 <= status <= 599:
            problems.append(f"force_status for {fid} must be 400..599, got {status}")
    if not _valid_key(c.api_key):
        problems.append("api_key must be 1..1024 printable ASCII characters without spaces")
    return problems


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= 1024 and all("!" <= ch <= "~" for ch in key)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the sandbox saw it; ``status`` is None when the connection was dropped."""

    at: float
    method: str
    path: str
    fusebill_id: int | None
    geotab_id: str | None
    status: int | None
    note: str


class _LatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fusebillId: StrictInt = Field(ge=1, le=MAX_FUSEBILL_ID)
    geotabId: StrictStr = Field(min_length=1, max_length=255)


class _UnlatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fusebillId: StrictInt = Field(ge=1, le=MAX_FUSEBILL_ID)


def _error_body(status: int, value: str, key: str = "Api Error") -> dict[str, Any]:
    return {"ErrorId": 0, "HttpStatusCode": status, "Errors": [{"Key": key, "Value": value}]}


# --- time formats -------------------------------------------------------------------------


def _ceil_ms(t: float) -> int:
    # Rounded up, so a client waiting until the stated time never starts too early; the small
    # tolerance keeps float noise (x.0000000001) from adding a millisecond.
    return math.ceil(t * 1000 - 1e-3)


def format_reset(t: float, fmt: ResetFormat) -> str:
    """Render a reset time the way ``reset_format`` asks."""
    if fmt == "http":
        return email.utils.formatdate(math.ceil(t - 1e-6), usegmt=True)
    ms = _ceil_ms(t)
    if fmt == "epoch":
        if ms % 1000 == 0:
            return str(ms // 1000)
        return f"{ms // 1000}.{ms % 1000:03d}".rstrip("0")
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _dotnet_timestamp(t: float) -> str:
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S.%f}0Z"


# --- limits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RateState:
    limit_minute: int
    remaining_minute: int
    reset_minute: float
    limit_day: int
    remaining_day: int
    reset_day: float
    exceeded: str | None = None  # None, "minute" or "day"
    retry_after: int | None = None  # seconds until the exceeded limit frees


class _Limiter:
    """Fusebill's minute and day limits; a token bucket replaces the minute window on request."""

    def __init__(self, config: SandboxConfig) -> None:
        self._lock = threading.Lock()
        self._per_minute = config.limits.per_minute
        self._per_day = config.day_limit or config.limits.per_day
        self._minute_s = config.minute_seconds
        self._rate = config.rate_limit
        self._capacity = max(1.0, config.rate_limit or 0.0)
        self._tokens = self._capacity
        self._stamp = time.time()
        self._window = -1
        self._window_count = 0
        self._day = -1
        self._day_count = 0

    @property
    def minute_limit_text(self) -> str:
        if self._rate is not None:
            return f"{self._rate:g} requests per second"
        text = f"{self._per_minute} requests per minute"
        if self._minute_s != 60:
            text += f" (sandbox minute = {self._minute_s:g} s)"
        return text

    @property
    def day_limit_text(self) -> str:
        return f"{self._per_day} requests per day"

    def check(self, consume: bool) -> _RateState:
        """Count one request if it fits (``consume``), and report the state either way."""
        with self._lock:
            now = time.time()
            self._advance(now)
            exceeded: str | None = None
            retry_after: float | None = None
            if consume:
                if self._day_count >= self._per_day:
                    exceeded, retry_after = "day", self._day_reset() - now
                elif not self._minute_has_room():
                    exceeded, retry_after = "minute", self._minute_free_at(now) - now
                else:
                    self._day_count += 1
                    if self._rate is not None:
                        self._tokens -= 1.0
                    else:
                        self._window_count += 1
            if self._rate is not None:
                limit_minute = round(self._rate * 60)
                remaining_minute = max(0, math.floor(self._tokens + 1e-9))
                reset_minute = self._next_token_at(now)
            else:
                limit_minute = self._per_minute
                remaining_minute = max(0, self._per_minute - self._window_count)
                reset_minute = (self._window + 1) * self._minute_s
            return _RateState(
                limit_minute=limit_minute,
                remaining_minute=remaining_minute,
                reset_minute=reset_minute,
                limit_day=self._per_day,
                remaining_day=max(0, self._per_day - self._day_count),
                reset_day=self._day_reset(),
                exceeded=exceeded,
                retry_after=None if retry_after is None else max(1, math.ceil(retry_after - 1e-6)),
            )

    def _advance(self, now: float) -> None:
        window = math.floor(now / self._minute_s)
        if window != self._window:
            self._window, self._window_count = window, 0
        day = math.floor(now / 86_400)
        if day != self._day:
            self._day, self._day_count = day, 0
        if self._rate is not None:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._stamp = now

    def _minute_has_room(self) -> bool:
        if self._rate is not None:
            return self._tokens >= 1.0 - 1e-9
        return self._window_count < self._per_minute

    def _minute_free_at(self, now: float) -> float:
        if self._rate is not None:
            return now + max(0.0, 1.0 - self._tokens) / self._rate
        return (self._window + 1) * self._minute_s

    def _next_token_at(self, now: float) -> float:
        assert self._rate is not None
        if self._tokens >= self._capacity:
            return now
        target = min(math.floor(self._tokens + 1e-9) + 1.0, self._capacity)
        return now + max(0.0, target - self._tokens) / self._rate

    def _day_reset(self) -> float:
        return float((self._day + 1) * 86_400)


# --- state and log ---------------------------------------------------------------------------

_FIRST_NAMES = ("John", "Maria", "Ahmed", "Chloe", "Liam", "Priya", "Kenji", "Sofia")
_LAST_NAMES = ("Doe", "Tremblay", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kowalski", "Silva")
_COMPANIES = (
    "Stolen Bikes",
    "Northwind Fleet",
    "ACME Haulage",
    "Blue Line Couriers",
    "Harbour Taxis",
    "Prairie Freight",
    "Maple Leaf Logistics",
    "Granite Transport",
)
_CREATED = "2020-07-07T12:59:17.793"
_INITIAL_MODIFIED = "2020-07-07T14:42:12.8536714Z"


@dataclass
class _Record:
    geotab_id: str | None = None
    modified: str = _INITIAL_MODIFIED


def _customer_json(fusebill_id: int, record: _Record) -> dict[str, Any]:
    """A customer shaped like the one in Fusebill's Latch Customer documentation."""
    if fusebill_id == 671_201:
        first, last, company = "John", "Doe", "Stolen Bikes"
    else:
        first = _FIRST_NAMES[fusebill_id % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(fusebill_id // 7) % len(_LAST_NAMES)]
        company = _COMPANIES[(fusebill_id // 3) % len(_COMPANIES)]
    email_address = f"{first}.{last}.{fusebill_id}@example.com".lower()
    return {
        "firstName": first,
        "middleName": None,
        "lastName": last,
        "companyName": company,
        "suffix": None,
        "primaryEmail": email_address,
        "primaryPhone": "613-555-5555",
        "secondaryEmail": None,
        "secondaryPhone": None,
        "title": "Mr" if first in ("John", "Ahmed", "Liam", "Kenji") else "Ms",
        "reference": str(fusebill_id % 10_000),
        "status": "Active",
        "customerAccountStatus": "Good",
        "currency": "USD",
        "customerReference": {
            "reference1": None,
            "reference2": None,
            "reference3": None,
            "salesTrackingCodes": [],
            "id": fusebill_id,
            "uri": f"/{fusebill_id}",
        },
        "customerAcquisition": {
            "adContent": None,
            "campaign": None,
            "keyword": None,
            "landingPage": None,
            "medium": None,
            "source": None,
            "id": fusebill_id,
            "uri": f"/{fusebill_id}",
        },
        "monthlyRecurringRevenue": 25.98,
        "netMonthlyRecurringRevenue": 25.98,
        "salesforceId": None,
        "salesforceAccountType": None,
        "salesforceSynchStatus": "Enabled",
        "netsuiteId": None,
        "netsuiteSynchStatus": "Enabled",
        "netsuiteCustomerType": "",
        "portalUserName": None,
        "parentId": None,
        "quickBooksLatchType": None,
        "quickBooksId": None,
        "quickBooksSyncToken": None,
        "hubSpotId": None,
        "hubSpotCompanyId": None,
        "geotabId": record.geotab_id,
        "modifiedTimestamp": record.modified,
        "createdTimestamp": _CREATED,
        "id": fusebill_id,
        "uri": f"/customers/{fusebill_id}",
    }


class _RequestLog:
    """In memory for in-process tests, and as flushed JSON lines for tests in another process."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._file: IO[str] | None = None
        if path is not None:
            # Open for the sandbox's lifetime, closed by close(); one open per line would be slow.
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(dataclasses.asdict(entry)) + "\n")
                self._file.flush()

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


@dataclass
class _Answer:
    status: int
    payload: dict[str, Any]
    note: str
    fusebill_id: int | None = None
    geotab_id: str | None = None
    stall_s: float = 0.0


# --- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, sandbox: Sandbox, host: str, port: int) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        # Idle keep-alive connections would otherwise keep being served after stop().
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def poke(self) -> None:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal here (timeouts, kill -9); keep stderr quiet.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, keep-alive answers wait on delayed ACKs (~40 ms each).
    disable_nagle_algorithm = True
    # Buffered, so headers and body leave in one segment.
    wbufsize = 64 * 1024
    server_version = "batch-latch-sandbox"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        super().finish()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the access log would be noise on the CLI's stderr."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors in Fusebill's JSON format too, and the connection closed."""
        sandbox = self.server.sandbox
        code = int(code)  # http.server passes HTTPStatus members
        phrase = message or _phrase(code)
        method = getattr(self, "command", "") or ""
        sandbox._log_request(method, self._path(), None, None, code, phrase)
        self.close_connection = True
        self._respond(code, _error_body(code, phrase), sandbox._limiter.check(consume=False))

    def _path(self) -> str:
        return urlsplit(getattr(self, "path", "") or "").path

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Length Required: send a Content-Length")
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "Invalid Content-Length")
            return None
        if length > MAX_BODY_BYTES:
            self.send_error(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body
            return None
        return body

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        config = sandbox.config
        arrived = time.time()
        method, path = self.command, self._path()
        body = self._read_body()
        if body is None:
            return
        if config.latency_ms:
            sandbox._stopping.wait(config.latency_ms / 1000)

        def conclude(answer: _Answer, rate: _RateState, drop: bool = False) -> None:
            sandbox._log_request(
                method,
                path,
                answer.fusebill_id,
                answer.geotab_id,
                None if drop else answer.status,
                answer.note + ("; connection dropped" if drop else ""),
                at=arrived,
            )
            if answer.stall_s:
                sandbox._stopping.wait(answer.stall_s)
            if drop:
                self.close_connection = True
                return
            self._respond(answer.status, answer.payload, rate)

        if not sandbox._authorized(self.headers.get("Authorization")):
            value = "Invalid API key" if "Authorization" in self.headers else "API key missing"
            rate = sandbox._limiter.check(consume=False)
            conclude(
                _Answer(401, _error_body(401, value), "unauthorized", *_hints(path, body)), rate
            )
            return

        rate = sandbox._limiter.check(consume=True)
        if rate.exceeded is not None:
            limiter = sandbox._limiter
            if rate.exceeded == "day":
                value = f"Daily rate limit exceeded: {limiter.day_limit_text}"
            else:
                value = f"Rate limit exceeded: {limiter.minute_limit_text}"
            note = f"{rate.exceeded} limit"
            conclude(_Answer(429, _error_body(429, value), note, *_hints(path, body)), rate)
            return

        fault = sandbox._draw_fault()
        if fault is not None:
            payload = _error_body(fault, _FAULT_MESSAGES[fault])
            conclude(_Answer(fault, payload, "fault", *_hints(path, body)), rate)
            return

        answer = sandbox._route(method, path, body)
        conclude(answer, rate, drop=sandbox._draw_drop())

    def _respond(self, status: int, payload: dict[str, Any], rate: _RateState) -> None:
        config = self.server.sandbox.config
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        fmt = config.reset_format
        self.send_header("X-Rate-Limit-Limit-Minute", str(rate.limit_minute))
        self.send_header("X-Rate-Limit-Remaining-Minute", str(rate.remaining_minute))
        self.send_header("X-Rate-Limit-Reset-Minute", format_reset(rate.reset_minute, fmt))
        self.send_header("X-Rate-Limit-Limit-Day", str(rate.limit_day))
        self.send_header("X-Rate-Limit-Remaining-Day", str(rate.remaining_day))
        self.send_header("X-Rate-Limit-Reset-Day", format_reset(rate.reset_day, fmt))
        if status == 429 and config.retry_after and rate.retry_after is not None:
            self.send_header("Retry-After", str(rate.retry_after))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _hints(path: str, body: bytes) -> tuple[int | None, str | None]:
    """Best-effort ids for the log of requests that were refused before being parsed."""
    fid: int | None = None
    gid: str | None = None
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    if tail.isdigit() and tail.isascii():
        fid = int(tail)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        raw_fid, raw_gid = data.get("fusebillId"), data.get("geotabId")
        if isinstance(raw_fid, int) and not isinstance(raw_fid, bool):
            fid = raw_fid
        if isinstance(raw_gid, str):
            gid = raw_gid
    return fid, gid


# --- the sandbox -----------------------------------------------------------------------------


class Sandbox:
    """The server plus its state; ``Sandbox(port=0, profile="sandbox")`` for short."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else SandboxConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self._limiter = _Limiter(self.config)
        self._stopping = threading.Event()
        self._state_lock = threading.Lock()
        self._records: dict[int, _Record] = {}
        self._stalled: set[int] = set()
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        self._log: _RequestLog | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; raises OSError when the port is taken."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a Sandbox can be started once")
        self._log = _RequestLog(self.config.log_path)
        try:
            self._server = _Server(self, self.config.host, self.config.port)
        except BaseException:
            self._log.close()
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="batch-latch-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up on open connections and close the log; safe to call twice."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            # shutdown() waits for serve_forever's next poll; a connection wakes it at once.
            stopper = threading.Thread(target=server.shutdown, daemon=True)
            stopper.start()
            while stopper.is_alive():
                server.poke()
                stopper.join(0.05)
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    # state

    def requests_log(self) -> list[LoggedRequest]:
        """A copy of every request seen so far, oldest first."""
        return self._log.entries() if self._log is not None else []

    def geotab_id_of(self, fusebill_id: int) -> str | None:
        with self._state_lock:
            record = self._records.get(fusebill_id)
            return record.geotab_id if record is not None else None

    def set_geotab_id(self, fusebill_id: int, value: str | None) -> None:
        """Arrange state for a test (``None`` unlatches); only known customers have any."""
        if not is_known_customer(fusebill_id):
            raise ValueError(f"{fusebill_id} is not a sandbox customer")
        with self._state_lock:
            record = self._records.setdefault(fusebill_id, _Record())
            record.geotab_id = value
            record.modified = _dotnet_timestamp(time.time())

    # used by the handler (same module, hence the underscores)

    def _authorized(self, header: str | None) -> bool:
        expected = ("Basic " + self.config.api_key).encode("latin-1")
        got = (header or "").encode("latin-1", errors="replace")
        return header is not None and hmac.compare_digest(got, expected)

    def _draw_fault(self) -> int | None:
        if self.config.fail_rate <= 0:
            return None
        with self._rng_lock:
            if self._rng.random() < self.config.fail_rate:
                return self._rng.choice((500, 502, 503))
        return None

    def _draw_drop(self) -> bool:
        if self.config.drop_rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < self.config.drop_rate

    def _log_request(
        self,
        method: str,
        path: str,
        fusebill_id: int | None,
        geotab_id: str | None,
        status: int | None,
        note: str,
        at: float | None = None,
    ) -> None:
        entry = LoggedRequest(
            at=time.time() if at is None else at,
            method=method,
            path=path,
            fusebill_id=fusebill_id,
            geotab_id=geotab_id,
            status=status,
            note=note,
        )
        if self._log is not None:
            self._log.add(entry)

    def _route(self, method: str, path: str, body: bytes) -> _Answer:
        route = path.rstrip("/").lower()
        if method == "POST" and route == "/v1/geotab/latchcustomer":
            return self._latch(body)
        if method == "POST" and route == "/v1/geotab/unlatchcustomer":
            return self._unlatch(body)
        prefix = "/v1/customers/"
        if method in ("GET", "HEAD") and route.startswith(prefix):
            tail = route[len(prefix) :]
            if tail.isascii() and tail.isdigit():
                return self._get(int(tail))
        fid, gid = _hints(path, body)
        return _Answer(404, _error_body(404, "Resource not found"), "no such route", fid, gid)

    def _latch(self, body: bytes) -> _Answer:
        parsed = _parse(body, _LatchBody)
        if isinstance(parsed, _Answer):
            return parsed
        fid, gid = parsed.fusebillId, parsed.geotabId
        forced = self.config.force_status.get(fid)
        if forced is not None:
            value = _FORCED_MESSAGES.get(forced, _phrase(forced)).format(id=fid)
            return _Answer(forced, _error_body(forced, value), "forced status", fid, gid)
        if not is_known_customer(fid):
            return _not_found(fid, gid)
        with self._state_lock:
            record = self._records.setdefault(fid, _Record())
            relatch = self.config.relatch_status
            if relatch is not None and record.geotab_id == gid:
                value = f"Customer {fid} is already latched to Geotab ID {gid}"
                return _Answer(relatch, _error_body(relatch, value), "already latched", fid, gid)
            stored = gid
            note = "latched"
            if fid in self.config.mismatch_ids:
                stored = ("OTHER-" + gid)[:255]
                note = f"latched to a different geotabId ({stored})"
            record.geotab_id = stored
            record.modified = _dotnet_timestamp(time.time())
            stall = 0.0
            if self.config.stall_first_ms and fid not in self._stalled:
                self._stalled.add(fid)
                stall = self.config.stall_first_ms / 1000
                note += f"; answer stalled {self.config.stall_first_ms} ms"
            return _Answer(200, _customer_json(fid, record), note, fid, gid, stall)

    def _unlatch(self, body: bytes) -> _Answer:
        parsed = _parse(body, _UnlatchBody)
        if isinstance(parsed, _Answer):
            return parsed
        fid = parsed.fusebillId
        if not is_known_customer(fid):
            return _not_found(fid, None)
        with self._state_lock:
            record = self._records.setdefault(fid, _Record())
            record.geotab_id = None
            record.modified = _dotnet_timestamp(time.time())
            return _Answer(200, _customer_json(fid, record), "unlatched", fid, None)

    def _get(self, fid: int) -> _Answer:
        if not is_known_customer(fid):
            return _not_found(fid, None)
        with self._state_lock:
            record = self._records.get(fid) or _Record()
            payload = _customer_json(fid, record)
        return _Answer(200, payload, "read", fid, record.geotab_id)


def _not_found(fid: int, gid: str | None) -> _Answer:
    value = f"Customer with id {fid} not found."
    return _Answer(404, _error_body(404, value), "unknown customer", fid, gid)


_Body = TypeVar("_Body", bound=BaseModel)


def _parse(body: bytes, model: type[_Body]) -> _Body | _Answer:
    """The validated body, or the 400 answer to send instead."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        value = f"The request body is not valid JSON: {exc}"
        return _Answer(400, _error_body(400, value), "bad JSON")
    if not isinstance(data, dict):
        value = "The request body must be a JSON object"
        return _Answer(400, _error_body(400, value), "bad body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"Key": ".".join(str(part) for part in err["loc"]) or "Api Error", "Value": err["msg"]}
            for err in exc.errors()
        ]
        payload = {"ErrorId": 0, "HttpStatusCode": 400, "Errors": errors}
        return _Answer(400, payload, "invalid body", *_hints("", body))


# --- CLI -------------------------------------------------------------------------------------


def _bounded(kind: type[int] | type[float], low: float, high: float, what: str) -> Any:
    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value

    return convert


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _customer_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_FUSEBILL_ID:
        raise argparse.ArgumentTypeError(f"not a Fusebill customer id: {text!r}")
    return int(text)


def _error_status(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 400 <= int(text) <= 599:
        raise argparse.ArgumentTypeError(f"must be an HTTP error status 400..599, got {text!r}")
    return int(text)


def _id_status(text: str) -> tuple[int, int]:
    fid, sep, status = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ID:STATUS, got {text!r}")
    return _customer_id(fid.strip()), _error_status(status.strip())


def _api_key(text: str) -> str:
    if not _valid_key(text):
        raise argparse.ArgumentTypeError("must be printable ASCII without spaces")
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's options to ``parser`` (the ``batch-latch sandbox`` subcommand)."""
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    net.add_argument(
        "--port",
        type=_bounded(int, 0, 65535, "must be 0..65535"),
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (%(default)s)",
    )
    net.add_argument(
        "--api-key",
        type=_api_key,
        default=DEFAULT_API_KEY,
        metavar="K",
        help="the key clients must send as 'Authorization: Basic K'. This is the sandbox's own "
        "key, never a real Fusebill key (default: %(default)s)",
    )
    lim = parser.add_argument_group("limits")
    lim.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default="live",
        help="Fusebill account limits: live 1000/min 180000/day, sandbox 50/5000, "
        "testdrive 10/500 (%(default)s)",
    )
    lim.add_argument(
        "--rate-limit",
        type=_positive_float,
        metavar="R",
        help="replace the minute limit by a token bucket of R requests per second "
        "(bursts up to max(1, R))",
    )
    lim.add_argument(
        "--day-limit",
        type=_bounded(int, 1, 10**9, "must be from 1 to 1000000000"),
        metavar="N",
        help="replace the profile's daily limit by N requests, for quick quota rehearsals",
    )
    lim.add_argument(
        "--retry-after",
        action="store_true",
        help="send Retry-After on 429 answers (Fusebill documents none)",
    )
    lim.add_argument(
        "--minute-seconds",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="length of the minute window in seconds, for quick rehearsals (%(default)g)",
    )
    lim.add_argument(
        "--reset-format",
        choices=RESET_FORMATS,
        default="iso",
        help="format of the X-Rate-Limit-Reset-* headers (%(default)s)",
    )
    faults = parser.add_argument_group("faults for rehearsals")
    faults.add_argument(
        "--latency-ms",
        type=_bounded(int, 0, 600_000, "must be 0..600000"),
        default=0,
        metavar="N",
        help="wait N ms before answering every request (%(default)s)",
    )
    faults.add_argument(
        "--fail-rate",
        type=_bounded(float, 0.0, 1.0, "must be between 0 and 1"),
        default=0.0,
        metavar="F",
        help="share of requests answered 500/502/503 without applying anything (%(default)g)",
    )
    faults.add_argument(
        "--drop-rate",
        type=_bounded(float, 0.0, 1.0, "must be between 0 and 1"),
        default=0.0,
        metavar="F",
        help="share of requests applied, then hung up on without an answer (%(default)g)",
    )
    faults.add_argument(
        "--stall-first-ms",
        type=_bounded(int, 0, 600_000, "must be 0..600000"),
        default=0,
        metavar="N",
        help="apply the first latch of each customer, then answer N ms late (%(default)s)",
    )
    faults.add_argument(
        "--relatch-status",
        type=_error_status,
        metavar="STATUS",
        help="answer STATUS (e.g. 409) when a customer is latched again to the geotabId it has "
        "(default: 200, idempotent)",
    )
    faults.add_argument(
        "--mismatch-id",
        type=_customer_id,
        action="append",
        metavar="ID",
        help="latching this customer stores and answers a different geotabId (repeatable)",
    )
    faults.add_argument(
        "--force-status",
        type=_id_status,
        action="append",
        metavar="ID:STATUS",
        help="latch requests for ID always get STATUS, nothing applied (repeatable)",
    )
    faults.add_argument("--seed", type=int, help="seed for the random faults (reproducible runs)")
    faults.add_argument(
        "--log",
        metavar="FILE",
        help="append every request to FILE as JSON lines (flushed per line)",
    )


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The config ``configure_parser``'s options describe; missing attributes take defaults."""
    defaults = SandboxConfig()

    def get(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        return default if value is None else value

    return SandboxConfig(
        host=get("host", defaults.host),
        port=get("port", DEFAULT_PORT),
        api_key=get("api_key", defaults.api_key),
        profile=get("profile", defaults.profile),
        rate_limit=get("rate_limit", None),
        day_limit=get("day_limit", None),
        retry_after=bool(get("retry_after", False)),
        minute_seconds=get("minute_seconds", defaults.minute_seconds),
        reset_format=get("reset_format", defaults.reset_format),
        latency_ms=get("latency_ms", 0),
        fail_rate=get("fail_rate", 0.0),
        drop_rate=get("drop_rate", 0.0),
        stall_first_ms=get("stall_first_ms", 0),
        relatch_status=get("relatch_status", None),
        mismatch_ids=frozenset(get("mismatch_id", ())),
        force_status=dict(get("force_status", ())),
        seed=get("seed", None),
        log_path=get("log", None),
    )


class _Stop(Exception):
    """Raised by the signal handler to leave the idle loop."""


def _raise_stop(signum: int, frame: types.FrameType | None) -> NoReturn:
    raise _Stop


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the one stdout line tells scripts where to connect."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"batch-latch sandbox: {exc}") from None
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except OSError as exc:
        if exc.filename is not None:
            reason = exc.strerror or str(exc)
            message = f"batch-latch sandbox: cannot open the log {exc.filename}: {reason}"
            raise SystemExit(message) from None
        raise SystemExit(_bind_error(config, exc)) from None
    handled = (signal.SIGINT, signal.SIGTERM)
    previous: list[Any] = []
    in_main = threading.current_thread() is threading.main_thread()
    try:
        if in_main:
            previous = [signal.signal(sig, _raise_stop) for sig in handled]
        print(
            f"batch-latch sandbox listening on {sandbox.base_url} (profile {config.profile})",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        if in_main:
            for sig in handled:
                signal.signal(sig, signal.SIG_IGN)
        sandbox.stop()
        if in_main:
            for sig, old in zip(handled, previous, strict=False):
                signal.signal(sig, old)
    return 0


def _bind_error(config: SandboxConfig, exc: OSError) -> str:
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"batch-latch sandbox: cannot listen on {where}: the port is already in use"
    reason = exc.strerror or str(exc)
    return f"batch-latch sandbox: cannot listen on {where}: {reason}"
