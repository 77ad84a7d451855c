"""Fusebill over HTTP: send one request, and say what its answer means for the row.

The client never retries or sleeps: that is the runner's job, so that one throttle sees
every attempt. It turns every answer, or the lack of one, into a :class:`Reply`, and
:func:`classify` turns a reply into a :class:`Verdict` the runner acts on.
"""

from __future__ import annotations

import email.utils
import enum
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    import requests

from batch_latch import __version__

RATE_HEADERS = ("Limit", "Remaining", "Reset")
_LONG_FRACTION = re.compile(r"([.,]\d{6})\d+")  # .NET writes 7 digits; 3.10 reads 6
_DAILY = re.compile(r"\b(daily|per day|a day|each day|/day|24 ?h)", re.IGNORECASE)


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


@dataclass(frozen=True)
class Reply:
    """What came back: a status and body, or ``error`` (``timeout`` / ``connection``)."""

    status: int | None
    body: Any = None  # parsed JSON, or the text when it was not JSON
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    detail: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Kind(enum.Enum):
    SUCCESS = "success"
    MISMATCH = "mismatch"  # 2xx, but the customer carries another geotabId
    NOT_FOUND = "not_found"
    KEY_REJECTED = "key_rejected"  # 401 / 403
    RATE_LIMITED = "rate_limited"  # 429
    RETRYABLE = "retryable"  # 408, 5xx, timeout, connection error
    REJECTED = "rejected"  # any other 4xx


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    message: str
    error_key: str = ""
    ambiguous: bool = False  # the request may have landed although we got no good answer
    daily_limit: bool = False


class FusebillClient:
    """One ``requests.Session`` per worker thread, each with its own keep-alive connection."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float, pool_size: int) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout
        self._pool_size = pool_size
        self._local = threading.local()
        self._headers = {
            "Authorization": f"Basic {api_key}",  # already the whole credential: sent as is
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"batch-latch/{__version__}",
        }

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests  # here, not at the top: a run with nothing to send never needs it
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            session.trust_env = False  # no netrc or proxy auth replacing our header
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        body = {"fusebillId": fusebill_id, "geotabId": geotab_id}
        return self._send("POST", f"{self._base}/Geotab/LatchCustomer", body)

    def customer(self, fusebill_id: int) -> Reply:
        return self._send("GET", f"{self._base}/customers/{fusebill_id}", None)

    def _send(self, method: str, url: str, body: dict[str, Any] | None) -> Reply:
        import requests

        try:
            response = self._session().request(
                method,
                url,
                json=body,
                headers=self._headers,
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            return Reply(None, error="timeout", detail=f"no answer within {self._timeout:g} s")
        except requests.RequestException as exc:
            return Reply(None, error="connection", detail=_first_line(exc, self._key))
        # A server (or proxy) that echoes the credential must not put it into our messages.
        headers = {k.lower(): self.redact(v) for k, v in response.headers.items()}
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = response.text
        return Reply(response.status_code, _scrub(parsed, self._key), headers)

    def redact(self, text: str) -> str:
        return redact(text, self._key)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def _scrub(value: Any, secret: str) -> Any:
    """``value`` (parsed JSON or text) with ``secret`` redacted in every string it holds."""
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {_scrub(k, secret): _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    return value


def _first_line(exc: BaseException, secret: str) -> str:
    # Redact before cutting: a cut through the key would leave a piece no redaction finds.
    text = redact(str(exc), secret).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


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


def classify(reply: Reply, sent_geotab_id: str) -> Verdict:
    if reply.status is None:
        what = "timed out" if reply.error == "timeout" else "connection failed"
        return Verdict(
            Kind.RETRYABLE,
            f"{what}: {reply.detail}",
            reply.error or "connection",
            ambiguous=True,
        )
    status = reply.status
    if 200 <= status < 300:
        # A customer object always has the field; null means nothing is latched (this matters
        # for the read-back after an unanswered attempt). A body without the field is success.
        if isinstance(reply.body, dict) and "geotabId" in reply.body:
            returned = reply.body["geotabId"]
            if returned != sent_geotab_id:
                holds = "has no geotabId" if returned is None else f"geotabId is {returned!r}"
                return Verdict(
                    Kind.MISMATCH,
                    f"Fusebill answered {status} but the customer's {holds}, "
                    f"not {sent_geotab_id!r}",
                    "geotab_id_mismatch",
                )
        return Verdict(Kind.SUCCESS, "latched")
    message = error_text(reply.body)[0] or f"HTTP {status}"
    if status == 404:
        return Verdict(Kind.NOT_FOUND, message, "not_found")
    if status in (401, 403):
        return Verdict(Kind.KEY_REJECTED, message, "key_rejected")
    if status == 429:
        daily = bool(_DAILY.search(message)) or reply.header("x-rate-limit-remaining-day") == "0"
        return Verdict(Kind.RATE_LIMITED, message, "rate_limited", daily_limit=daily)
    if status == 408 or status >= 500:
        return Verdict(
            Kind.RETRYABLE, f"HTTP {status}: {message}", f"http_{status}", ambiguous=status >= 500
        )
    return Verdict(Kind.REJECTED, message, f"http_{status}")


# --- rate-limit headers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    remaining_minute: int | None
    reset_minute: float | None  # seconds from now until the minute window frees
    remaining_day: int | None
    reset_day_at: datetime | None  # when the daily quota resets (UTC)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_time(value: str | None) -> datetime | None:
    """A reset time as epoch seconds, ISO 8601 or an HTTP date; None when unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number != number or abs(number) > 1e11:  # NaN or absurd
            return None
        return datetime.fromtimestamp(number, tz=timezone.utc)
    try:
        iso_text = _LONG_FRACTION.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
        iso = datetime.fromisoformat(iso_text)
        return iso if iso.tzinfo else iso.replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def seconds_until(value: str | None, reply: Reply, now: datetime) -> float | None:
    """How long until ``value``; measured against the server's ``Date`` when clocks differ."""
    when = parse_time(value)
    if when is None:
        return None
    server_now = parse_time(reply.header("date"))
    base = now
    if server_now is not None and abs((server_now - now).total_seconds()) > 2:
        base = server_now
    return (when - base).total_seconds()


def retry_after(reply: Reply, now: datetime) -> float | None:
    value = reply.header("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    wait = seconds_until(value, reply, now)
    return None if wait is None else max(0.0, wait)


def limits(reply: Reply, now: datetime) -> Limits:
    reset_minute = None
    remaining_minute = _int(reply.header("x-rate-limit-remaining-minute"))
    if reply.header("x-rate-limit-reset-minute") is not None or remaining_minute == 0:
        wait = seconds_until(reply.header("x-rate-limit-reset-minute"), reply, now)
        if wait is None or not -61 <= wait <= 61:
            # Unreadable, or no reset of this minute's window: wait for the next full minute.
            wait = 60.0 - now.timestamp() % 60.0
        reset_minute = max(0.0, wait)
    return Limits(
        remaining_minute=remaining_minute,
        reset_minute=reset_minute,
        remaining_day=_int(reply.header("x-rate-limit-remaining-day")),
        reset_day_at=parse_time(reply.header("x-rate-limit-reset-day")),
    )
