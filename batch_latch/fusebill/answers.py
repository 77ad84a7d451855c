"""What Fusebill's answer means: a :class:`Reply` in, a :class:`Verdict` out. Pure
functions, no HTTP (that is :mod:`batch_latch.fusebill.client`); the rate-limit headers are read in
:mod:`batch_latch.fusebill.ratelimits`.

A 2xx proves itself or counts for nothing: a latch is ``SUCCESS`` only when the body is a
JSON object carrying the geotabId sent, a read only when the body is this customer's
object. Everything outside 2xx goes through one mapping shared by latch, read and unlatch.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from batch_latch.vocab import ErrorKey, RowKey, StopReason, Word, http_key

_DAILY = re.compile(r"\b(daily|per day|a day|each day|/day|24 ?h)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_EXCERPT = 80


class ReplyError(Word):
    """Why a :class:`Reply` holds no usable answer."""

    TIMEOUT = "timeout"  # no (complete) answer in time
    CONNECTION = "connection"  # refused, reset, cut short, a protocol error
    TLS = "tls"  # the certificate or the handshake failed, or a CA setting names no file
    PROXY = "proxy"  # the proxy refused, could not be reached or used
    TOO_LARGE = "too_large"  # over the cap: the status is kept, the body was not read
    INTERNAL = "internal"  # reading or judging the answer raised (the attempt loop)


@dataclass(frozen=True)
class Reply:
    """What came back: a status and body, or ``error`` when no usable answer came."""

    status: int | None
    body: Any = None  # parsed JSON, else the text; None when not read
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    error: ReplyError | None = None
    detail: str = ""  # one line, key redacted
    url: str = ""  # the URL requested

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Meaning(enum.Enum):
    SUCCESS = "success"
    UNPROVEN = "unproven"  # a 2xx that does not show the change: read back before believing
    NOT_FOUND = "not_found"  # 404 in Fusebill's error format
    KEY_REJECTED = "key_rejected"  # 401 / 403
    RATE_LIMITED = "rate_limited"  # 429
    RETRYABLE = "retryable"  # 408, 409, 5xx, timeout, connection error, unreadable read
    REJECTED = "rejected"  # any other 4xx
    STOP = "stop"  # a configuration problem: Verdict.stop says which


@dataclass(frozen=True)
class Verdict:
    kind: Meaning
    message: str
    error_key: RowKey = ErrorKey.NONE
    ambiguous: bool = False  # the request may have landed (timeout, dropped connection, 5xx)
    daily_limit: bool = False  # a 429 that names the daily limit / Remaining-Day: 0
    stop: StopReason | None = None  # for Meaning.STOP


@dataclass(frozen=True)
class Holding:
    """What a customer read found."""

    geotab_id: str | None  # None: holds none (null or "")
    known: bool = True  # False: the customer object has no geotabId key at all


class FusebillErrorItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Key: str | None = None
    Value: str | None = None


class FusebillError(BaseModel):
    """Fusebill's error body: ``{"ErrorId":0,"HttpStatusCode":404,"Errors":[{Key, Value}]}``."""

    model_config = ConfigDict(extra="ignore")
    ErrorId: int | None = None
    HttpStatusCode: int | None = None
    Errors: list[FusebillErrorItem] = []


def error_text(body: Any) -> tuple[str, str]:
    """(message, key) from Fusebill's error body, or a short excerpt of whatever came."""
    if isinstance(body, dict):
        try:
            parsed = FusebillError.model_validate(body)
        except ValidationError:
            parsed = FusebillError()
        values = [e.Value for e in parsed.Errors if e.Value]
        if values:
            key = next((e.Key for e in parsed.Errors if e.Key), "") or ""
            return "; ".join(values), key
        for name in ("Message", "message", "error", "detail"):
            if isinstance(body.get(name), str):
                return str(body[name]), ""
    text = " ".join(str(body or "").split())
    return text[:200], ""


def fusebill_not_found(body: Any) -> str | None:
    """``Errors[].Value`` when ``body`` is Fusebill's 404 error object, else None.

    The format: a JSON object with ``HttpStatusCode`` 404 and an ``Errors`` list holding at
    least one ``Value`` (``ErrorId`` is not required). A web server's or gateway's own 404
    page does not look like this, and then the URL, not the customer, is what is missing.
    """
    if not isinstance(body, dict) or str(body.get("HttpStatusCode")) != "404":
        return None
    errors = body.get("Errors")
    if not isinstance(errors, list):
        return None
    values = [e["Value"] for e in errors if isinstance(e, dict) and isinstance(e.get("Value"), str)]
    return "; ".join(values) if values else None


# --- the meaning of an answer ----------------------------------------------------------------


def classify_latch(reply: Reply, sent_geotab_id: str, fusebill_id: int | None = None) -> Verdict:
    """``SUCCESS`` only for a JSON object whose ``geotabId`` is the one sent."""
    verdict = _write_unknown(reply, "latch") or outside_2xx(reply, fusebill_id)
    if verdict is not None:
        return verdict
    body = reply.body
    if reply.error is None and isinstance(body, dict) and "geotabId" in body:
        held = body["geotabId"]
        if isinstance(held, str) and held == sent_geotab_id:
            return Verdict(Meaning.SUCCESS, "latched")
        holds = "holds no geotabId" if held in (None, "") else f"holds geotabId {held!r}"
        return Verdict(
            Meaning.UNPROVEN,
            f"Fusebill answered {reply.status} but the customer {holds}, not {sent_geotab_id!r}",
            ErrorKey.GEOTAB_ID_MISMATCH,
        )
    return Verdict(
        Meaning.UNPROVEN,
        f"Fusebill answered {reply.status} with {describe(reply)}: no proof the latch landed",
        ErrorKey.UNCONFIRMED,
    )


def classify_read(reply: Reply, fusebill_id: int) -> tuple[Verdict, Holding | None]:
    """``SUCCESS`` and what the customer holds, for this customer's object only."""
    verdict = outside_2xx(reply, fusebill_id)
    if verdict is not None:
        return verdict, None
    body = reply.body
    if reply.error is not None or not isinstance(body, dict):
        return _unreadable(reply, describe(reply)), None
    if "id" not in body:
        return _unreadable(reply, describe(reply)), None
    if not _same_id(body["id"], fusebill_id):
        return _unreadable(reply, f"the object of another customer (id {body['id']!r})"), None
    if "geotabId" not in body:
        return Verdict(Meaning.SUCCESS, "the customer object shows no geotabId"), Holding(
            None, False
        )
    held = body["geotabId"]
    if held is None or held == "":
        return Verdict(Meaning.SUCCESS, "holds no geotabId"), Holding(None)
    if isinstance(held, int) and not isinstance(held, bool):
        held = str(held)
    if not isinstance(held, str):
        return _unreadable(reply, f"a geotabId that is not text ({held!r})"), None
    return Verdict(Meaning.SUCCESS, f"holds geotabId {held!r}"), Holding(held)


def classify_unlatch(reply: Reply, fusebill_id: int) -> Verdict:
    """``SUCCESS`` only for this customer's object showing no geotabId."""
    verdict = _write_unknown(reply, "unlatch") or outside_2xx(reply, fusebill_id)
    if verdict is not None:
        return verdict
    body = reply.body
    if reply.error is None and isinstance(body, dict) and _same_id(body.get("id"), fusebill_id):
        held = body.get("geotabId", ...)
        if held is None or held == "":
            return Verdict(Meaning.SUCCESS, "unlatched")
        if held is not ...:
            return Verdict(
                Meaning.UNPROVEN,
                f"Fusebill answered {reply.status} but the customer still holds {held!r}",
                ErrorKey.GEOTAB_ID_MISMATCH,
            )
        what = "the customer object without a geotabId"
    else:
        what = describe(reply)
    return Verdict(
        Meaning.UNPROVEN,
        f"Fusebill answered {reply.status} with {what}: no proof the unlatch landed",
        ErrorKey.UNCONFIRMED,
    )


def _write_unknown(reply: Reply, what: str) -> Verdict | None:
    """A 1xx as the final answer, or a 304, to a write: it may have landed, so it is
    ``UNPROVEN`` (the runner reads the customer back), never a refusal or a redirect stop."""
    status = reply.status
    if status is None or not (100 <= status < 200 or status == 304):
        return None
    return Verdict(
        Meaning.UNPROVEN,
        f"Fusebill answered {status}, not a final answer to a write: the {what} may have landed",
        ErrorKey.UNCONFIRMED,
        ambiguous=True,
    )


def _same_id(value: Any, fusebill_id: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == fusebill_id
    return isinstance(value, str) and value.strip() == str(fusebill_id)


def _unreadable(reply: Reply, what: str) -> Verdict:
    return Verdict(
        Meaning.RETRYABLE,
        f"the customer read answered {reply.status} with {what}, not this customer's object",
        ErrorKey.UNREADABLE,
    )


def describe(reply: Reply) -> str:
    """A few words on what a body is, for messages about answers that prove nothing."""
    body = reply.body
    if reply.error is ReplyError.TOO_LARGE:
        return "an answer over 1 MiB (not read)"
    if body is None or (isinstance(body, str) and not body.strip()):
        return "an empty body"
    if isinstance(body, str):
        title = _TITLE.search(body)
        if title or body.lstrip()[:1] == "<":
            name = " ".join(title.group(1).split())[:_EXCERPT] if title else ""
            return f"an HTML page ({name!r})" if name else "an HTML page"
        return f"text that is not JSON ({' '.join(body.split())[:_EXCERPT]!r})"
    if isinstance(body, dict):
        names = ", ".join(list(map(str, body))[:6])
        return f"a JSON object without the customer's fields (keys: {names or 'none'})"
    return f"JSON that is not an object ({type(body).__name__})"


def outside_2xx(reply: Reply, fusebill_id: int | None = None) -> Verdict | None:
    """The verdict for anything but a 2xx; None for a 2xx (the caller judges its body)."""
    status = reply.status
    if reply.error is ReplyError.TLS:
        where = base_of(reply.url) or "the API"
        if "WRONG_VERSION_NUMBER" in reply.detail.upper():
            return _stop(
                StopReason.TLS,
                f"TLS handshake with {where} failed (WRONG_VERSION_NUMBER): the server may "
                "speak http, not https; check FUSEBILL_BASE_URL's scheme and port",
            )
        return _stop(
            StopReason.TLS,
            f"TLS certificate check failed for {where}: {reply.detail}. "
            "If a proxy or your network inspects TLS, set REQUESTS_CA_BUNDLE (or "
            "SSL_CERT_FILE) to its CA certificate file",
        )
    if reply.error is ReplyError.PROXY or status == 407:
        why = reply.detail or f"HTTP {status} Proxy Authentication Required"
        return _stop(
            StopReason.PROXY,
            f"the proxy refused the request to {reply.url or 'the API'} ({why}): check "
            "HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (and the proxy's credentials) and NO_PROXY",
        )
    if status is None:
        timeout = reply.error is ReplyError.TIMEOUT
        error = ErrorKey.TIMEOUT if timeout else ErrorKey.CONNECTION
        what = "timed out" if timeout else "connection failed"
        return Verdict(Meaning.RETRYABLE, f"{what}: {reply.detail}", error, ambiguous=True)
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return _redirect(reply, status)
    return _status_verdict(reply, status, fusebill_id)


_ROUTES = re.compile(r"/(customers|geotab)(/|\?|$)", re.IGNORECASE)


def base_of(url: str) -> str:
    """The base URL of a request's URL: what comes before its route (``/customers…`` or
    ``/Geotab/…``), so a message never carries a list URL's hundred ids."""
    starts = [m.start() for m in _ROUTES.finditer(url)]
    return url[: starts[-1]] if starts else url.split("?", 1)[0]


def _about_the_customer(values: str, fusebill_id: int | None) -> bool:
    """Whether a Fusebill 404 is about the customer (``Customer with id 123 not found.``)
    rather than the route (``Resource not found``: the base URL lacks ``/v1`` or the like)."""
    if fusebill_id is None:
        return True
    return str(fusebill_id) in values or "customer" in values.lower()


def _status_verdict(reply: Reply, status: int, fusebill_id: int | None = None) -> Verdict:
    message = error_text(reply.body)[0] or f"HTTP {status}"
    if status in (401, 403):
        return Verdict(Meaning.KEY_REJECTED, message, StopReason.KEY_REJECTED)
    values = fusebill_not_found(reply.body) if status == 404 else None
    if values is not None and _about_the_customer(values, fusebill_id):
        return Verdict(Meaning.NOT_FOUND, values, ErrorKey.NOT_FOUND)
    if values is not None:
        return _stop(
            StopReason.WRONG_URL,
            f"{reply.url or 'the API'} answered 404 {values!r}, which is not about customer "
            f"{fusebill_id}, so the URL looks wrong: check FUSEBILL_BASE_URL (it usually ends "
            "in /v1)",
        )
    if status in (404, 405):
        return _stop(
            StopReason.WRONG_URL,
            f"{reply.url or 'the API'} answered {status} without Fusebill's error format, so "
            "the URL looks wrong: check FUSEBILL_BASE_URL",
        )
    if status == 429:
        daily = bool(_DAILY.search(message)) or reply.header("x-rate-limit-remaining-day") == "0"
        return Verdict(Meaning.RATE_LIMITED, message, StopReason.RATE_LIMITED, daily_limit=daily)
    if reply.error is ReplyError.TOO_LARGE:
        return Verdict(
            Meaning.RETRYABLE,
            f"HTTP {status}: {describe(reply)}",
            http_key(status),
            ambiguous=status >= 500,
        )
    if status in (408, 409) or status >= 500:
        return Verdict(
            Meaning.RETRYABLE,
            f"HTTP {status}: {message}",
            http_key(status),
            ambiguous=status >= 500,
        )
    return Verdict(Meaning.REJECTED, message, http_key(status))


def _redirect(reply: Reply, status: int) -> Verdict:
    location = reply.header("location")
    where = f"to {location}" if location else "without a Location"
    return _stop(
        StopReason.REDIRECT,
        f"{reply.url or 'the API'} answered {status}, a redirect {where}; redirects are never "
        "followed (the API key must not travel): set FUSEBILL_BASE_URL to the final URL",
    )


def _stop(reason: StopReason, message: str) -> Verdict:
    return Verdict(Meaning.STOP, message, reason, stop=reason)


def host_port(url: str) -> str:
    """``host:port`` of a URL (the scheme's port when none is given)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the API"
    host = parts.hostname or "the API"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
