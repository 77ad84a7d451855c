"""The tool's one way of speaking HTTP outside the sandbox, for Fusebill and for the webhook.

:func:`make_session` builds every ``requests.Session`` (as twine's
``utils.make_requests_session()`` serves its repository and its auth alike): ``trust_env``
off, so requests never reads ``~/.netrc`` or the process environment behind our back; the
proxies and CA bundle of a :class:`~batch_latch.fusebill.proxies.Route`; no retries (the
caller decides); connections that tell the whole-request deadline which socket to cut
(:mod:`batch_latch.fusebill.deadline`).

:class:`Transport` sends one request at a time per thread, each bounded as a whole by a
deadline, never following a redirect, and reads the answer's body up to a cap. It hands back
an :class:`Answer`, or raises :class:`TransportError`: the one reading of what the network,
TLS or a proxy raised (:func:`classify`). Anything else raised inside a request is a bug and
propagates as it is.

A connection whose state is uncertain is never used again: after a timeout, an interruption,
any error, a body not read to its end, or an answer that by rule carries no body (1xx, 204,
304: a server that sends a final answer after a 1xx, or a body after a 204, would leave it in
the line, to be read as the next request's answer), the thread's session is closed with all
its connections, and its next request opens a new one.
"""

from __future__ import annotations

import enum
import functools
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from batch_latch.fusebill.deadline import CURRENT, Deadlines, watched_adapter
from batch_latch.fusebill.proxies import Route

if TYPE_CHECKING:
    import requests

_CHUNK = 64 * 1024
# ssl errors that are the network's, not the configuration's: retried like a dropped line
_TRANSIENT_SSL = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
# OpenSSL's words for the verify codes met most (expired, unknown issuer, wrong name), for an
# error that carries its code without a message
_VERIFY_WORDS = {10: "certificate has expired", 20: "unable to get local issuer certificate"}
_VERIFY_WORDS[62] = "Hostname mismatch"
# answers with no body by rule: anything the server sends after them is out of step
_BODILESS = (204, 304)


def make_session(route: Route, *, pool_maxsize: int = 1) -> requests.Session:
    """A session for ``route``: the only place the tool (outside the sandbox) makes one."""
    import requests  # here, not at the top: a run with nothing to send never needs it

    session = requests.Session()
    session.trust_env = False  # no netrc, no environment behind our back
    session.proxies = dict(route.proxies)
    session.verify = route.verify
    adapter = watched_adapter()(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case, values as they came
    body: bytes | None  # None: over the cap (or not asked for), not read further


class Failure(str, enum.Enum):
    """Why a request got no complete answer."""

    DEADLINE = "deadline"  # the whole-request deadline passed: the watchdog cut it
    TIMEOUT = "timeout"  # one wait (a read) timed out
    #: No connection was made in time: nothing was sent (a host that drops the handshake).
    CONNECT_TIMEOUT = "connect_timeout"
    INTERRUPTED = "interrupted"  # :meth:`Transport.abort` (a second Ctrl-C)
    CA_SETTING = "ca_setting"  # a CA variable names no file: nothing was sent
    TLS = "tls"  # the certificate or the handshake failed
    PROXY = "proxy"  # the proxy refused, could not be reached, or could not be used
    CONNECTION = "connection"  # refused, reset, name not found, cut short, a protocol error

    def __str__(self) -> str:
        return self.value


class TransportError(Exception):
    """A request that got no complete answer.

    ``words``: a few words built from the exception types and their attributes, never
    quoting the URL (for ``TLS``, the certificate's own words; for ``CA_SETTING``, which
    variable names which missing file). ``cause``: one line naming the innermost cause in
    its own words, which may quote the URL: redact it, and never show it where the URL is
    itself a secret."""

    def __init__(self, kind: Failure, words: str, cause: str = "") -> None:
        super().__init__(f"{kind}: {words}")
        self.kind = kind
        self.words = words
        self.cause = cause or words


class Transport:
    """Requests along one :class:`Route` with one set of headers: one session per thread,
    its connection kept alive while nothing is in doubt; :meth:`close` when done."""

    def __init__(self, route: Route, headers: Mapping[str, str]) -> None:
        self.route = route
        self._headers = dict(headers)
        self._deadlines = Deadlines()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def send(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        json: Any = None,
        data: bytes | None = None,
        cap: int | None,
    ) -> Answer:
        """One request, connect to last byte within ``timeout`` seconds; the body read up to
        ``cap`` bytes (``None``: not read at all, the status is the answer)."""
        if self.route.ca_problem:
            raise TransportError(Failure.CA_SETTING, self.route.ca_problem)
        ticket = self._deadlines.start(timeout)
        session = self._session()
        failure: Exception | None = None
        answer: Answer | None = None
        CURRENT.ticket = ticket  # the connection hooks bind their socket to it
        try:
            answer = self._exchange(session, ticket.deadline, method, url, json, data, cap)
        except Exception as exc:  # judged below, once the ticket says whether it was cut
            failure = exc
        finally:
            CURRENT.ticket = None
        expired, aborted = self._deadlines.finish(ticket)
        if answer is None or expired or in_doubt(answer):
            self._discard(session)
        if aborted:
            raise TransportError(Failure.INTERRUPTED, "cut off: interrupted")
        if failure is not None and never_connected(failure):
            raise TransportError(Failure.CONNECT_TIMEOUT, "no connection in time") from failure
        if expired:  # checked first: a cut can look like any error, or like an early end
            raise TransportError(Failure.DEADLINE, "no complete answer in time")
        if failure is not None:
            if not isinstance(failure, _transport_errors()):
                raise failure  # a bug, not the network: the caller's guard reports it
            raise classify(failure, proxied=bool(self.route.proxies)) from failure
        assert answer is not None
        return answer

    def abort(self) -> None:
        """Cut every request in flight now: each returns at once."""
        self._deadlines.abort()

    def close(self) -> None:
        self._deadlines.close()
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = make_session(self.route, pool_maxsize=2)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _discard(self, session: requests.Session) -> None:
        """Close this thread's session and every connection in it; the next request on
        this thread makes a new one."""
        self._local.session = None
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
        session.close()

    def _exchange(
        self,
        session: requests.Session,
        deadline: float,
        method: str,
        url: str,
        json: Any,
        data: bytes | None,
        cap: int | None,
    ) -> Answer:
        left = max(deadline - time.monotonic(), 0.001)
        response = session.request(
            method,
            url,
            json=json,
            data=data,
            headers=self._headers,
            timeout=(left, left),  # each wait; the watchdog bounds the sum
            allow_redirects=False,
            stream=True,
        )
        try:
            headers = {k.lower(): v for k, v in response.headers.items()}
            body = None if cap is None else read_capped(response, cap)
            return Answer(response.status_code, headers, body)
        finally:
            response.close()  # a body not read to the end closes its connection


def in_doubt(answer: Answer) -> bool:
    """Whether the connection that carried ``answer`` may hold something out of step: a body
    not read to its end, or an answer that by rule has none (1xx as final, 204, 304)."""
    return answer.body is None or answer.status < 200 or answer.status in _BODILESS


def read_capped(response: requests.Response, cap: int) -> bytes | None:
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


# --- what went wrong -------------------------------------------------------------------------


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
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


def classify(exc: BaseException, *, proxied: bool) -> TransportError:
    """The one reading of an exception a request raised. ``proxied``: a proxy was in use
    (then a URL requests cannot parse is the proxy's: the base URL is checked before)."""
    import requests
    import urllib3.exceptions as u3

    chain = list(_causes(exc))
    cause = _cause_text(chain)
    if any(_is_timeout(e) for e in chain):
        return TransportError(Failure.TIMEOUT, "no answer in time", cause)
    tls = _tls_cause(chain)
    if tls is not None:
        return TransportError(Failure.TLS, tls, tls)
    proxy_errors: tuple[type[BaseException], ...] = (requests.exceptions.ProxyError, u3.ProxyError)
    if proxied:
        proxy_errors += (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            u3.ProxySchemeUnknown,
            u3.LocationParseError,
        )
    if any(isinstance(e, proxy_errors) for e in chain):
        return TransportError(Failure.PROXY, "the proxy refused or could not be reached", cause)
    return TransportError(Failure.CONNECTION, _connection_words(chain), cause)


def never_connected(exc: BaseException) -> bool:
    """Whether ``exc`` is a connect timeout: no connection was made, the request never left."""
    import requests
    import urllib3.exceptions as u3

    for e in _causes(exc):
        if isinstance(e, u3.NewConnectionError):  # a refusal, filed under connect timeouts
            return False
        if isinstance(e, (requests.exceptions.ConnectTimeout, u3.ConnectTimeoutError)):
            return True
    return False


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


def _connection_words(chain: list[BaseException]) -> str:
    """A few words on a connection that failed, from the exception types only."""
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    names = [type(e).__name__ for e in chain]
    if any("NameResolution" in n or n == "gaierror" for n in names):
        return "host name not found"
    return f"could not connect ({names[-1]})"


def _cause_text(chain: list[BaseException]) -> str:
    """One line naming the innermost cause, without urllib3's pool preamble."""
    for e in reversed(chain):
        text = " ".join(str(e).split())
        if text:
            if "): " in text and text.split("): ", 1)[0].count("(") == 1:
                text = text.split("): ", 1)[1]  # "HTTPConnection(host=..., port=...): ..."
            return f"{type(e).__name__}: {text}" if len(text) < 40 else text
    return type(chain[0]).__name__
