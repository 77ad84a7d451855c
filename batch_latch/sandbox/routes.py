"""Request in, answer out: Fusebill's routes, limits and faults, with no socket involved.

The HTTP server (``server.py``) only reads requests and writes ``Answer`` objects; every
decision is made here, so tests can call ``Api.handle`` directly.

Order of decisions, as on the real path: middleboxes first (``redirect_to``, the captive
portal of ``html_200_rate``: they never reach Fusebill, so they use up nothing and carry no
``X-Rate-Limit-*`` headers), then the key (401, uses up nothing), the limits (429, uses up
nothing), random 5xx, and the route itself. ``applied_then_504_rate`` applies the latch,
then a load balancer answers 504 in its place (no rate headers: a load balancer's page).
"""

from __future__ import annotations

import hmac
import http
import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from .config import SandboxConfig
from .customers import MAX_FUSEBILL_ID, Customers, customer_json, is_known_customer
from .limits import Limiter, RateState
from .listing import ListQueryError, customer_list, is_list_route

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
LATCH_PATH = "/v1/geotab/latchcustomer"
UNLATCH_PATH = "/v1/geotab/unlatchcustomer"
CUSTOMER_PREFIX = "/v1/customers/"

_FAULT_MESSAGES = {
    500: "An unexpected error has occurred. Please try again later.",
    502: "Bad Gateway: the upstream service did not answer.",
    503: "Service Unavailable: the service is temporarily overloaded.",
}
_FORCED_MESSAGES = {
    400: "Customer is not eligible for Geotab latching",
    401: "Invalid API key",
    403: "Forbidden",
    404: "Customer with id {id} not found.",
    408: "Request Timeout",
    409: "Customer {id} is locked by another operation",
    422: "Customer is not eligible for Geotab latching",
    429: "Rate limit exceeded",
}
PORTAL_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Guest Wi-Fi</title></head>\n"
    b"<body><h1>Welcome to Guest Wi-Fi</h1><p>Please accept the terms of use to continue.</p>"
    b'<form method="post" action="/login"><button>Accept</button></form></body></html>\n'
)
GATEWAY_TIMEOUT_PAGE = (
    b"<html><head><title>504 Gateway Time-out</title></head>\n"
    b"<body><center><h1>504 Gateway Time-out</h1></center></body></html>\n"
)


@dataclass(frozen=True)
class Request:
    """What the server read: method, path, body, the Authorization header and the query string."""

    method: str
    path: str
    body: bytes = b""
    authorization: str | None = None
    query: str = ""  # the raw query string, without "?"


@dataclass
class Answer:
    """What to send, and what to do on the wire (stall, hang up, drip) before or while sending."""

    status: int
    body: bytes
    note: str
    fusebill_id: int | None = None
    geotab_id: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stall_s: float = 0.0
    drop: bool = False
    drip_s: float = 0.0
    middlebox: bool = False  # made by the network in between: no X-Rate-Limit-* headers
    listed: int | None = None  # customer objects in a customer list's 200 answer

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def error_body(status: int, value: str, key: str = "Api Error") -> dict[str, Any]:
    """Fusebill's error format."""
    return {"ErrorId": 0, "HttpStatusCode": status, "Errors": [{"Key": key, "Value": value}]}


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _json(status: int, payload: dict[str, Any], note: str, *ids: Any) -> Answer:
    answer = Answer(status, json.dumps(payload).encode("utf-8"), note, *ids)
    answer.headers.append(("Content-Type", JSON_TYPE))
    return answer


def _error(status: int, value: str, note: str, *ids: Any) -> Answer:
    return _json(status, error_body(status, value), note, *ids)


def _page(
    status: int,
    html: bytes,
    note: str,
    request: Request | None = None,
    ids: tuple[int | None, str | None] = (None, None),
) -> Answer:
    """An HTML page from a middlebox (portal, proxy, load balancer), not from Fusebill."""
    if request is not None:
        ids = hints(request.path, request.body)
    answer = Answer(status, html, note, *ids, middlebox=True)
    answer.headers.append(("Content-Type", HTML_TYPE))
    return answer


class _LatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fusebillId: StrictInt = Field(ge=1, le=MAX_FUSEBILL_ID)
    geotabId: StrictStr = Field(min_length=1, max_length=255)


class _UnlatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fusebillId: StrictInt = Field(ge=1, le=MAX_FUSEBILL_ID)


class Api:
    """Fusebill as the sandbox plays it: state, limits and faults behind ``handle``."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.customers = Customers(config.preset_pairs)
        # The URL the sandbox serves under, for each customer's absolute ``uri``; ``Sandbox``
        # sets it once the port is bound (before any request is served).
        self.base_url = base_url_for(config, config.port)
        self.limiter = Limiter(config)
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()  # the random draws and the stalled set
        self._stalled: set[int] = set()

    def handle(self, request: Request) -> Answer:
        """The whole answer to one request, decided as Fusebill and the network between would."""
        answer = self._middlebox(request)
        if answer is None:
            answer = self._fusebill(request)
        self._maybe_drip(answer)
        return answer

    def protocol_error(self, status: int, message: str) -> Answer:
        """An answer for a request the server could not even read (bad length, too large)."""
        answer = _error(status, message, message)
        return self._with_rate(answer, self.limiter.check(consume=False))

    def _middlebox(self, request: Request) -> Answer | None:
        target = self.config.redirect_to
        if target is not None:
            page = b"<html><body><h1>301 Moved Permanently</h1></body></html>\n"
            answer = _page(301, page, f"redirected to {target}", request)
            answer.headers.append(("Location", target))
            return answer
        is_latch = request.method == "POST" and _route_of(request.path) == LATCH_PATH
        if is_latch and self._draw(self.config.html_200_rate):
            return _page(200, PORTAL_PAGE, "captive portal page, nothing applied", request)
        return None

    def _fusebill(self, request: Request) -> Answer:
        if not self._authorized(request.authorization):
            value = "API key missing" if request.authorization is None else "Invalid API key"
            answer = _error(401, value, "unauthorized", *hints(request.path, request.body))
            return self._with_rate(answer, self.limiter.check(consume=False))
        rate = self.limiter.check(consume=True)
        if rate.exceeded is not None:
            return self._with_rate(self._too_many(rate, request), rate)
        fault = self._draw_fault()
        if fault is not None:
            ids = hints(request.path, request.body)
            return self._with_rate(_error(fault, _FAULT_MESSAGES[fault], "fault", *ids), rate)
        answer = self._route(request)
        if self._draw(self.config.drop_rate):
            answer.drop = True
        return answer if answer.middlebox else self._with_rate(answer, rate)

    def _too_many(self, rate: RateState, request: Request) -> Answer:
        if rate.exceeded == "day":
            value = f"Daily rate limit exceeded: {self.limiter.day_limit_text}"
        else:
            value = f"Rate limit exceeded: {self.limiter.minute_limit_text}"
        answer = _error(429, value, f"{rate.exceeded} limit", *hints(request.path, request.body))
        seconds = self.config.retry_after_seconds
        if seconds is None and self.config.retry_after:
            seconds = rate.retry_after
        if seconds is not None:
            answer.headers.append(("Retry-After", str(seconds)))
        return answer

    def _with_rate(self, answer: Answer, rate: RateState) -> Answer:
        answer.headers += rate.headers(self.config.reset_format)
        return answer

    def _route(self, request: Request) -> Answer:
        method, route = request.method, _route_of(request.path)
        if method == "POST" and route == LATCH_PATH:
            return self._latch(request.body)
        if method == "POST" and route == UNLATCH_PATH:
            return self._unlatch(request.body)
        if method in ("GET", "HEAD") and route.startswith(CUSTOMER_PREFIX):
            tail = route[len(CUSTOMER_PREFIX) :]
            if tail.isascii() and tail.isdigit():
                return self._get(int(tail))
        if is_list_route(method, request.path):
            return self._list(request)
        ids = hints(request.path, request.body)
        return _error(404, "Resource not found", "no such route", *ids)

    def _latch(self, body: bytes) -> Answer:
        parsed = _parse(body, _LatchBody)
        if isinstance(parsed, Answer):
            return parsed
        fid, gid = parsed.fusebillId, parsed.geotabId
        forced = self.config.force_status.get(fid)
        if forced is not None:
            value = _FORCED_MESSAGES.get(forced, phrase(forced)).format(id=fid)
            return _error(forced, value, "forced status", fid, gid)
        if not is_known_customer(fid):
            return _not_found(fid, gid)
        if self._draw(self.config.empty_200_rate):
            return Answer(200, b"", "empty answer, nothing applied", fid, gid)
        return self._apply_latch(fid, gid)

    def _apply_latch(self, fid: int, gid: str) -> Answer:
        stored, note = gid, "latched"
        if fid in self.config.mismatch_ids:
            stored = ("OTHER-" + gid)[:255]
            note = f"latched to a different geotabId ({stored})"
        relatch = self.config.relatch_status
        record = self.customers.latch(fid, stored, gid if relatch is not None else None)
        if record is None:
            assert relatch is not None
            value = f"Customer {fid} is already latched to Geotab ID {gid}"
            return _error(relatch, value, "already latched", fid, gid)
        if self._draw(self.config.applied_then_504_rate):
            note += "; load balancer answered 504"
            return _page(504, GATEWAY_TIMEOUT_PAGE, note, ids=(fid, gid))
        answer = _json(200, customer_json(fid, record, base=self.base_url), note, fid, gid)
        if self.config.stall_first_ms and self._first_stall(fid):
            answer.stall_s = self.config.stall_first_ms / 1000
            answer.note += f"; answer stalled {self.config.stall_first_ms} ms"
        return answer

    def _unlatch(self, body: bytes) -> Answer:
        parsed = _parse(body, _UnlatchBody)
        if isinstance(parsed, Answer):
            return parsed
        fid = parsed.fusebillId
        if not is_known_customer(fid):
            return _not_found(fid, None)
        record = self.customers.store(fid, None)
        payload = customer_json(fid, record, base=self.base_url)
        return _json(200, payload, "unlatched", fid, None)

    def _get(self, fid: int) -> Answer:
        if not is_known_customer(fid):
            return _not_found(fid, None)
        record = self.customers.get(fid)
        payload = customer_json(fid, record, not self.config.hide_geotab_id, self.base_url)
        return _json(200, payload, "read", fid, record.geotab_id)

    def _list(self, request: Request) -> Answer:
        show = not self.config.hide_geotab_id
        mode, query, style = self.config.customer_list, request.query, self.config.list_headers
        try:
            listing = customer_list(
                mode, self.customers, query, request.path, show, style, self.base_url
            )
        except ListQueryError as exc:
            return _error(400, str(exc), "list: query not understood")
        body = json.dumps(listing.payload).encode("utf-8")
        answer = Answer(listing.status, body, listing.note, listed=listing.listed)
        answer.headers += [("Content-Type", JSON_TYPE), *listing.headers]
        return answer

    def _authorized(self, header: str | None) -> bool:
        expected = ("Basic " + self.config.api_key).encode("latin-1")
        got = (header or "").encode("latin-1", errors="replace")
        return header is not None and hmac.compare_digest(got, expected)

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def _draw_fault(self) -> int | None:
        if self.config.fail_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() < self.config.fail_rate:
                return self._rng.choice((500, 502, 503))
        return None

    def _first_stall(self, fid: int) -> bool:
        with self._lock:
            first = fid not in self._stalled
            self._stalled.add(fid)
            return first

    def _maybe_drip(self, answer: Answer) -> None:
        chosen = self.config.drip_ids
        if self.config.drip_seconds and (not chosen or answer.fusebill_id in chosen):
            answer.drip_s = self.config.drip_seconds


def base_url_for(config: SandboxConfig, port: int) -> str:
    """``{scheme}://{host}:{port}/v1``, the base URL clients use for this sandbox."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{'https' if config.tls else 'http'}://{host}:{port}/v1"


def _route_of(path: str) -> str:
    # Paths match ignoring case and a trailing slash, as ASP.NET routing does.
    return path.rstrip("/").lower()


def _not_found(fid: int, gid: str | None) -> Answer:
    return _error(404, f"Customer with id {fid} not found.", "unknown customer", fid, gid)


_Body = TypeVar("_Body", bound=BaseModel)


def _parse(body: bytes, model: type[_Body]) -> _Body | Answer:
    """The validated body, or the 400 answer to send instead."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        return _error(400, f"The request body is not valid JSON: {exc}", "bad JSON")
    if not isinstance(data, dict):
        return _error(400, "The request body must be a JSON object", "bad body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"Key": ".".join(str(part) for part in err["loc"]) or "Api Error", "Value": err["msg"]}
            for err in exc.errors()
        ]
        payload = {"ErrorId": 0, "HttpStatusCode": 400, "Errors": errors}
        return _json(400, payload, "invalid body", *hints("", body))


def hints(path: str, body: bytes) -> tuple[int | None, str | None]:
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
