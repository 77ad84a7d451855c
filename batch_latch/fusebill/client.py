"""Fusebill over HTTP: send one request and hand back what came, as a :class:`Reply`.

The client never retries or sleeps (the runner does, so one throttle sees every attempt),
never follows a redirect (the key must not travel) and never reads ``~/.netrc``: the key
header is the only credential. What an answer means is :mod:`batch_latch.fusebill.answers`.

- Proxies and CA bundles come from the standard variables in ``env``, resolved once by
  :mod:`batch_latch.fusebill.proxies`: the sessions keep ``trust_env`` off, so requests
  itself never looks at netrc or the process environment.
- ``timeout`` bounds the whole request, connect to last byte. Each request takes a ticket
  with its deadline; one watchdog thread per client sleeps until the earliest deadline and
  shuts down the socket of a request still running then. :meth:`FusebillClient.abort` cuts
  every request in flight the same way.
- Bodies over :data:`MAX_BODY` are not read further: ``error="too_large"``; a customer list
  answer may be 8 KiB per customer asked (:func:`list_cap`), never less than that.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from batch_latch import __version__
from batch_latch.fusebill.answers import Reply
from batch_latch.fusebill.deadline import CURRENT, Deadlines, Ticket, watched_adapter
from batch_latch.fusebill.listing import BYTES_PER_CUSTOMER, list_url
from batch_latch.fusebill.proxies import ca_bundle, proxies_for, proxy_secrets, shown_proxy
from batch_latch.fusebill.redact import Redactor

if TYPE_CHECKING:
    import requests

MAX_BODY = 1 << 20  # 1 MiB
_CHUNK = 64 * 1024
# ssl errors that are the network's, not the configuration's: retried like a dropped line
_TRANSIENT_SSL = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
# OpenSSL's words for the verify codes met most (expired, unknown issuer, wrong name), for an
# error that carries its code without a message
_VERIFY_WORDS = {10: "certificate has expired", 20: "unable to get local issuer certificate"}
_VERIFY_WORDS[62] = "Hostname mismatch"


class FusebillClient:
    """One ``requests.Session`` per worker thread, each with its own keep-alive connection."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        environ: Mapping[str, str] = os.environ if env is None else env
        self._base = base_url.rstrip("/")
        # one redaction for every secret: the key and the proxies' passwords
        self._redact = Redactor(api_key, also=proxy_secrets(environ))
        self._timeout = timeout
        self._proxies = proxies_for(self._base, environ)
        self._verify, self._ca_note, self._ca_problem = ca_bundle(environ)
        self._deadlines = Deadlines()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._headers = {
            "Authorization": f"Basic {api_key}",  # already the whole credential: sent as is
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"batch-latch/{__version__}",
        }

    def __repr__(self) -> str:
        return f"FusebillClient({self._base!r}, timeout={self._timeout:g})"

    # --- the service -------------------------------------------------------------------------

    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        body = {"fusebillId": fusebill_id, "geotabId": geotab_id}
        return self._send("POST", f"{self._base}/Geotab/LatchCustomer", body)

    def unlatch(self, fusebill_id: int) -> Reply:
        body = {"fusebillId": fusebill_id}
        return self._send("POST", f"{self._base}/Geotab/UnlatchCustomer", body)

    def customer(self, fusebill_id: int) -> Reply:
        return self._send("GET", f"{self._base}/customers/{fusebill_id}", None)

    def customers(self, ids: Sequence[int], page: int = 0) -> Reply:
        """One page of Fusebill's customer list filtered to ``ids`` (1 to 1,000; cut them
        with :func:`batch_latch.fusebill.listing.batches`); judge it with ``classify_list``."""
        return self._send("GET", list_url(self._base, ids, page), None, list_cap(len(ids)))

    def first_customers(self, page_size: int) -> Reply:
        """The first page of the unfiltered customer list (``check`` without INPUT)."""
        url = f"{self._base}/customers?pageSize={page_size}&pageNumber=0"
        return self._send("GET", url, None, list_cap(page_size))

    def redact(self, text: str) -> str:
        return self._redact(text)

    def abort(self) -> None:
        """Cut every request in flight now (a second Ctrl-C): each returns at once."""
        self._deadlines.abort()

    def close(self) -> None:
        self._deadlines.close()
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # --- one request -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests  # here, not at the top: a run with nothing to send never needs it

            session = requests.Session()
            session.trust_env = False  # no netrc, no environment behind our back
            session.proxies = dict(self._proxies)
            session.verify = self._verify
            adapter = watched_adapter()(pool_connections=1, pool_maxsize=2, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None, cap: int = MAX_BODY
    ) -> Reply:
        if self._ca_problem:
            return Reply(None, error="tls", detail=self._ca_problem, url=url)
        ticket = self._deadlines.start(self._timeout)
        failure: BaseException | None = None
        answer: tuple[int, dict[str, str], bytes | None] = (0, {}, None)
        try:
            answer = self._exchange(ticket, method, url, body, cap)
        except Exception as exc:  # judged below, once the ticket says whether it was cut
            failure = exc
        expired, aborted = self._deadlines.finish(ticket)
        if aborted:
            return Reply(None, error="connection", detail="cut off: interrupted", url=url)
        if expired:  # checked first: a cut can look like any error, or like an early end
            detail = f"no complete answer within {self._timeout:g} s"
            return Reply(None, error="timeout", detail=detail, url=url)
        if failure is not None and not isinstance(failure, transport_errors()):
            raise failure  # a bug, not the network: the runner's per-row guard reports it
        if failure is not None:
            error, detail = self._failure(failure)
            return Reply(None, error=error, detail=detail, url=url)
        status, headers, data = answer
        if data is None:
            size = headers.get("content-length")
            detail = f"answer of {size} bytes" if size else "answer"
            detail += f" over the {cap / MAX_BODY:g} MiB cap: not read further"
            return Reply(status, None, headers, error="too_large", detail=detail, url=url)
        return Reply(status, self._redact.scrub(_parse(data, headers)), headers, url=url)

    def _exchange(
        self, ticket: Ticket, method: str, url: str, body: dict[str, Any] | None, cap: int
    ) -> tuple[int, dict[str, str], bytes | None]:
        CURRENT.ticket = ticket  # the connection hooks bind their socket to it
        try:
            left = max(ticket.deadline - time.monotonic(), 0.001)
            response = self._session().request(
                method,
                url,
                json=body,
                headers=self._headers,
                timeout=(left, left),  # each wait; the watchdog bounds the sum
                allow_redirects=False,
                stream=True,
            )
            try:
                headers = {k.lower(): self._redact(v) for k, v in response.headers.items()}
                return response.status_code, headers, _read_capped(response, cap)
            finally:
                response.close()  # a body not read to the end closes its connection
        finally:
            CURRENT.ticket = None

    def _failure(self, exc: BaseException) -> tuple[str, str]:
        """(error, detail) for a request that raised; the detail keeps the cause."""
        import requests
        import urllib3.exceptions as u3

        chain = list(_causes(exc))
        if any(_is_timeout(e) for e in chain):
            return "timeout", f"no answer within {self._timeout:g} s"
        tls = _tls_cause(chain)
        if tls is not None:
            return "tls", self._redact(f"{tls} ({self._ca_note})")
        proxy_errors: tuple[type[BaseException], ...] = (
            requests.exceptions.ProxyError,
            u3.ProxyError,
        )
        if self._proxies:  # the base URL is checked by the settings: a bad URL is the proxy's
            proxy_errors += (
                requests.exceptions.InvalidURL,
                requests.exceptions.InvalidSchema,
                u3.ProxySchemeUnknown,
                u3.LocationParseError,
            )
        if any(isinstance(e, proxy_errors) for e in chain):
            where = ", ".join(shown_proxy(p) for p in self._proxies.values())
            return "proxy", self._redact(f"proxy {where}: {_cause_text(chain)}")[:300]
        return "connection", self._redact(_cause_text(chain))[:200]


# --- bodies ----------------------------------------------------------------------------------


def list_cap(count: int) -> int:
    """The most a list answer for ``count`` customers is read: 8 KiB each, at least 1 MiB."""
    return max(MAX_BODY, BYTES_PER_CUSTOMER * count)


def _read_capped(response: requests.Response, cap: int = MAX_BODY) -> bytes | None:
    """The body, or None when it is over ``cap`` bytes (then it is not read further)."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        return None
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(_CHUNK):
        total += len(chunk)
        if total > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(data: bytes, headers: Mapping[str, str]) -> Any:
    """Parsed JSON, else the text (``""`` for an empty body)."""
    if not data.strip():
        return ""
    try:
        return json.loads(data)
    except ValueError:  # not JSON, or not UTF-8/16/32
        pass
    from requests.utils import get_encoding_from_headers

    encoding = get_encoding_from_headers(dict(headers)) or "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


# --- errors ----------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (``reason``, causes, exception args), outermost first."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__]
        inner += list(current.args)
        stack.extend(e for e in reversed(inner) if isinstance(e, BaseException))


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """What the network, TLS or a proxy raise through requests; anything else is a bug."""
    import http.client

    import requests
    import urllib3.exceptions as u3
    from urllib3.util.ssl_match_hostname import CertificateError

    return (
        requests.exceptions.RequestException,
        u3.HTTPError,
        http.client.HTTPException,
        CertificateError,  # urllib3's own hostname check (a ValueError)
        OSError,  # socket, ssl and the deadline's TimeoutError
    )


def _is_timeout(e: BaseException) -> bool:
    import requests
    import urllib3.exceptions as u3

    if isinstance(e, u3.NewConnectionError):  # a refusal, though urllib3 files it as a timeout
        return False
    return isinstance(e, (requests.Timeout, u3.TimeoutError, TimeoutError))


def _tls_cause(chain: list[BaseException]) -> str | None:
    """The certificate's or handshake's own words (e.g. ``certificate has expired``)."""
    from urllib3.util.ssl_match_hostname import CertificateError

    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            words = e.verify_message or _VERIFY_WORDS.get(e.verify_code) or e.reason or e
            return f"certificate verify failed: {words}"
        if isinstance(e, CertificateError):  # urllib3's own hostname check
            return f"certificate verify failed: {e}"
    for e in chain:
        if isinstance(e, ssl.SSLError) and not isinstance(e, _TRANSIENT_SSL):
            return f"TLS handshake failed: {e.reason or e}"
        # requests' plain OSError when the CA bundle vanished after the settings checked it
        if type(e) is OSError and "TLS CA certificate bundle" in str(e):
            return str(e)
    return None


def _cause_text(chain: list[BaseException]) -> str:
    """One line naming the innermost cause, without urllib3's pool preamble."""
    for e in reversed(chain):
        text = " ".join(str(e).split())
        if text:
            if "): " in text and text.split("): ", 1)[0].count("(") == 1:
                text = text.split("): ", 1)[1]  # "HTTPConnection(host=..., port=...): ..."
            return f"{type(e).__name__}: {text}" if len(text) < 40 else text
    return type(chain[0]).__name__
