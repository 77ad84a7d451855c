"""Loopback stand-ins for the middle of a real network: TLS with a CA made in the test, a
CONNECT proxy, a server that drips, redirects, captive-portal HTML, huge bodies.

Everything listens on 127.0.0.1 only and stops when its ``with`` block ends; every wait in
here is bounded. A server answers each request with ``respond(exchange)``, a function that
writes the answer through the :class:`Exchange` it gets.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
SERVER_WAIT = 10.0  # the longest any stand-in waits on a peer before giving up


@dataclass(frozen=True)
class Seen:
    """A request as the stand-in received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]  # the client's address: one per connection


class Exchange:
    """One request being answered: what came, and ways to write the answer."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: Loopback, seen: Seen) -> None:
        self.handler = handler
        self.server = server
        self.seen = seen

    def json(self) -> Any:
        return json.loads(self.seen.body or b"null")

    def head(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.handler.wfile.flush()

    def send(
        self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.head(status, {"Content-Length": str(len(data)), **(headers or {})})
        self.write(data)

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self.send(
            status, json.dumps(value), {"Content-Type": "application/json", **(headers or {})}
        )

    def write(self, data: bytes) -> bool:
        """Send ``data``; False when the client has gone. Counts what was handed to the kernel."""
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError:
            return False
        with self.server.lock:
            self.server.sent_bytes += len(data)
        return True


Respond = Callable[[Exchange], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        context = self.server.loopback.tls
        if context is not None:
            self.request.settimeout(SERVER_WAIT)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.connection.settimeout(SERVER_WAIT)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(self.command, self.path, headers, body, self.client_address[:2])
        loopback = self.server.loopback
        with loopback.lock:
            loopback.seen.append(seen)
        loopback.arrived.set()
        loopback.respond(Exchange(self, loopback, seen))

    do_GET = do_POST = do_PUT = do_DELETE = _any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    loopback: Loopback

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up, or refuses our certificate, is what these tests do


class Loopback:
    """A threaded HTTP/1.1 server on 127.0.0.1 (HTTPS when ``tls`` is given)."""

    def __init__(
        self, respond: Respond, *, tls: ssl.SSLContext | None = None, host: str = LOOPBACK
    ) -> None:
        self.respond = respond
        self.tls = tls
        self.host = host  # the name put in URLs; the socket is always on 127.0.0.1
        self.seen: list[Seen] = []
        self.sent_bytes = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()  # set when the block ends: dripping answers end too
        self.arrived = threading.Event()  # set by every request received
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.loopback = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SERVER_WAIT)


# --- answers ---------------------------------------------------------------------------------


def fusebill(exchange: Exchange) -> None:
    """A tiny honest Fusebill: a latch answers the customer carrying the geotabId sent."""
    path = exchange.seen.path
    if exchange.seen.method == "POST" and path == "/v1/Geotab/LatchCustomer":
        sent = exchange.json()
        exchange.send_json(200, {"id": sent["fusebillId"], "geotabId": sent["geotabId"]})
    elif exchange.seen.method == "GET" and path.startswith("/v1/customers/"):
        exchange.send_json(200, {"id": int(path.rsplit("/", 1)[1]), "geotabId": None})
    else:
        exchange.send_json(404, {"Message": "No HTTP resource was found"})


def customer_list(pad: int = 0, echo: str = "") -> Respond:
    """Fusebill's customer list: ``?query=id:1,2,…`` answers those customers, ordered by id,
    holding none, each with ``pad`` bytes of notes (and ``echo`` in them, to test redaction)."""

    def respond(exchange: Exchange) -> None:
        query = parse_qs(urlsplit(exchange.seen.path).query)
        ids = sorted({int(i) for i in query["query"][0].removeprefix("id:").split(",")})
        notes = echo + "n" * pad
        body = [{"id": i, "geotabId": None, "notes": notes} for i in ids]
        headers = {"X-MaxPageIndex": "0", "X-CurrentPage": query["pageNumber"][0]}
        exchange.send_json(200, body, headers)

    return respond


def json_answer(status: int, value: Any, headers: dict[str, str] | None = None) -> Respond:
    return lambda exchange: exchange.send_json(status, value, headers)


def html_200(exchange: Exchange) -> None:
    """A captive portal: 200 with a login page, whatever was asked."""
    page = "<html><head><title>Guest Wi-Fi login</title></head><body>Accept terms</body></html>"
    exchange.send(200, page, {"Content-Type": "text/html"})


def redirect(status: int, location: str) -> Respond:
    return lambda exchange: exchange.send(status, "<a>moved</a>", {"Location": location})


def drip(total: int | None, every: float, *, status: int = 200) -> Respond:
    """Headers at once, then the body one byte every ``every`` seconds; ``total=None``
    drips forever (no length; until the client goes or the server stops)."""

    def respond(exchange: Exchange) -> None:
        length = {"Content-Length": str(total)} if total is not None else {"Connection": "close"}
        exchange.head(status, {"Content-Type": "application/json", **length})
        sent = 0
        while total is None or sent < total:
            if exchange.server.stop.wait(every) or not exchange.write(b" "):
                return
            sent += 1

    return respond


def drip_head(every: float) -> Respond:
    """The status line and headers one byte every ``every`` seconds, never ending."""

    def respond(exchange: Exchange) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"x" * 100_000
        for byte in head:
            if exchange.server.stop.wait(every) or not exchange.write(bytes([byte])):
                return

    return respond


def hang(exchange: Exchange) -> None:
    """Read the request, then say nothing until the server stops."""
    exchange.server.stop.wait(SERVER_WAIT)


def big_body(size: int, *, declare_length: bool, status: int = 502) -> Respond:
    """``size`` bytes of HTML in 64 KiB writes; with ``declare_length`` False the client
    cannot know the size before reading. ``Loopback.sent_bytes`` counts what left."""

    def respond(exchange: Exchange) -> None:
        exchange.handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        length = {"Content-Length": str(size)} if declare_length else {"Connection": "close"}
        exchange.head(status, {"Content-Type": "text/html", **length})
        chunk = b"<p>" + b"x" * (64 * 1024 - 3)
        for _ in range(size // len(chunk)):
            if exchange.server.stop.is_set() or not exchange.write(chunk):
                return

    return respond


# --- TLS -------------------------------------------------------------------------------------


def tls_server_context(
    ca: Any, *names: str, expired: bool = False
) -> ssl.SSLContext:  # ca: trustme.CA
    """A server context with a leaf for ``names`` issued by ``ca`` (expired a day ago)."""
    kwargs: dict[str, Any] = {}
    if expired:
        now = datetime.now(timezone.utc)
        kwargs = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
    leaf = ca.issue_cert(*names, **kwargs)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def ca_file(ca: Any, folder: Path) -> str:
    path = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


# --- a CONNECT proxy -------------------------------------------------------------------------


class _Listener:
    """A TCP listener on 127.0.0.1 serving each connection on a thread of its own; a
    subclass says what to do with a connection (``_serve``)."""

    _listener: socket.socket
    _stop: threading.Event
    _threads: list[threading.Thread]

    def _listen(self) -> None:
        self._stop = threading.Event()
        self._threads = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.1)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(SERVER_WAIT)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._accepted()
            self._spawn(self._serve, client)

    def _accepted(self) -> None:
        """Called once per accepted connection, before it is served."""

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError


@dataclass
class ConnectProxy(_Listener):
    """A forward proxy on 127.0.0.1 that tunnels ``CONNECT`` to loopback ports only.

    ``answer_407``: every request gets ``407 Proxy Authentication Required`` instead.
    ``requests`` lists the request lines it saw (``CONNECT localhost:1234 HTTP/1.1``),
    ``heads`` the whole heads (what a proxy can read of a request it tunnels).
    """

    answer_407: bool = False
    requests: list[str] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)  # each request's head as it came

    def __post_init__(self) -> None:
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._spawn(self._accept)
        return self

    def _serve(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            client.settimeout(SERVER_WAIT)
            head = _read_head(client)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.requests.append(line)
            self.heads.append(head)
            method, target = [*line.split(" "), "", ""][:2]
            if self.answer_407:
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host not in (LOOPBACK, "localhost") or not port.isdigit():
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection((LOOPBACK, int(port)), timeout=SERVER_WAIT) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pump(client, upstream)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.create_server((LOOPBACK, 0)) as sock:
        port = int(sock.getsockname()[1])
    yield port


# --- added for the CLI-level network tests ---------------------------------------------------


def fusebill_with(headers: Callable[[], dict[str, str]]) -> Respond:
    """:func:`fusebill`, with ``headers()`` added to every answer (e.g. rate-limit headers)."""

    def respond(exchange: Exchange) -> None:
        path, extra = exchange.seen.path, headers()
        if exchange.seen.method == "POST" and path == "/v1/Geotab/LatchCustomer":
            sent = exchange.json()
            body = {"id": sent["fusebillId"], "geotabId": sent["geotabId"]}
            exchange.send_json(200, body, extra)
        elif exchange.seen.method == "GET" and path.startswith("/v1/customers/"):
            exchange.send_json(200, {"id": int(path.rsplit("/", 1)[1]), "geotabId": None}, extra)
        else:
            exchange.send_json(404, {"Message": "No HTTP resource was found"}, extra)

    return respond


def iso_utc(epoch: float) -> str:
    """An epoch time as ISO 8601 in UTC with milliseconds, as .NET APIs write it."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class DailyQuota:
    """A tiny honest Fusebill whose answers say the daily quota is spent
    (``X-Rate-Limit-Remaining-Day: 0``, ``X-Rate-Limit-Reset-Day`` ``reset_in`` seconds after
    its first answer) until that reset, and that it has room after it. Every answer is a
    normal 2xx (the quota shows in the headers only) and carries the account's limits.

    The reset counts from the first answer, not from construction, so a slow start on a
    loaded machine cannot let the whole run arrive after the reset.

    ``answers`` lists (epoch time, spent) for each answer given.
    """

    def __init__(self, reset_in: float, *, per_minute: int = 1000, per_day: int = 180_000) -> None:
        self._reset_in = reset_in
        self._reset_at: float | None = None
        self.per_minute = per_minute
        self.per_day = per_day
        self.answers: list[tuple[float, bool]] = []
        self._lock = threading.Lock()
        self._respond = fusebill_with(self._headers)

    @property
    def reset_at(self) -> float:
        """When the quota resets (epoch seconds); known from the first answer on."""
        if self._reset_at is None:
            raise AssertionError("DailyQuota gave no answer, so it has no reset time")
        return self._reset_at

    def _headers(self) -> dict[str, str]:
        with self._lock:
            now = time.time()
            if self._reset_at is None:
                self._reset_at = now + self._reset_in
            spent = now < self._reset_at
            self.answers.append((now, spent))
        return {
            "X-Rate-Limit-Limit-Minute": str(self.per_minute),
            "X-Rate-Limit-Remaining-Minute": str(self.per_minute - 1),
            "X-Rate-Limit-Reset-Minute": iso_utc(now - now % 60 + 60),
            "X-Rate-Limit-Limit-Day": str(self.per_day),
            "X-Rate-Limit-Remaining-Day": "0" if spent else str(self.per_day - 1),
            "X-Rate-Limit-Reset-Day": iso_utc(
                self.reset_at if spent else now - now % 86400 + 86400
            ),
        }

    def __call__(self, exchange: Exchange) -> None:
        self._respond(exchange)


class TcpRelay(_Listener):
    """A plain TCP relay from a port on 127.0.0.1 to ``target_port`` that counts the
    connections it accepts: a TLS handshake the client refuses never reaches a server's
    request log, but it reaches this count."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self._lock = threading.Lock()
        self._listen()

    def __enter__(self) -> TcpRelay:
        self._spawn(self._accept)
        return self

    def _accepted(self) -> None:
        with self._lock:
            self.connections += 1

    def _serve(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            try:
                upstream = socket.create_connection((LOOPBACK, self.target_port), SERVER_WAIT)
            except OSError:
                return
            with upstream:
                _relay(client, upstream, self._stop)


def _relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or ``stop`` is set."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
