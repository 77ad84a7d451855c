"""The sandbox on the wire: HTTP/1.1 keep-alive, optional TLS, and the wire-level faults.

Every decision comes from ``routes.Api``; this module reads requests, writes answers, and
plays the timing faults (latency, stalls, hang-ups, dripping bodies). ``TCP_NODELAY`` is on,
so timings measured against the sandbox are not ~40 ms delayed-ACK artefacts.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .config import SandboxConfig
from .routes import Answer, Api, Request, phrase

MAX_BODY_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT_S = 10.0

# Called once per request with (arrival time, method, path, query string, answer, dropped).
Recorder = Callable[[float, str, str, str, Answer, bool], None]


def tls_context(config: SandboxConfig) -> ssl.SSLContext | None:
    """The server-side TLS context, or None for plain HTTP; a bad file is a ``ValueError``."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ValueError(
            f"cannot use the TLS certificate {config.tls_cert} with key {config.tls_key}: {reason}"
        ) from None
    return context


class Server(ThreadingHTTPServer):
    """A threading server that tracks its connections, so ``stop()`` can hang up on them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        api: Api,
        record: Recorder,
        stopping: threading.Event,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.api, self.record, self.stopping, self.tls = api, record, stopping, tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        host = api.config.host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, api.config.port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.tls is not None:
            # The handshake happens in the connection's own thread (finish_request), so one
            # slow or silent client cannot hold up the accept loop.
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                request.do_handshake()
                request.settimeout(None)
            except OSError:
                return  # a failed handshake (plain HTTP, untrusted CA) is the client's business
        super().finish_request(request, client_address)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        # Idle keep-alive connections would otherwise keep being served after stop(). The plain
        # socket's shutdown, also for TLS: SSLSocket.shutdown would tear down its state under
        # the handler thread's feet.
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def poke(self) -> None:
        """Connect once, so ``serve_forever`` wakes and sees the shutdown request."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal here (timeouts, kill -9); keep stderr quiet.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, keep-alive answers wait on delayed ACKs (~40 ms each).
    disable_nagle_algorithm = True
    # Buffered, so headers and body leave in one segment.
    wbufsize = 64 * 1024
    server_version = "batch-latch-sandbox"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the access log would be noise on the CLI's stderr."""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors in Fusebill's JSON format too, and the connection closed."""
        code = int(code)  # http.server passes HTTPStatus members
        answer = self.server.api.protocol_error(code, message or phrase(code))
        method = getattr(self, "command", "") or ""
        path, query = self._target()
        self.server.record(time.time(), method, path, query, answer, False)
        self.close_connection = True
        self._respond(answer)

    def _target(self) -> tuple[str, str]:
        """The request target's path and query string."""
        parts = urlsplit(getattr(self, "path", "") or "")
        return parts.path, parts.query

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
        server = self.server
        arrived = time.time()
        method, (path, query) = self.command, self._target()
        body = self._read_body()
        if body is None:
            return
        if server.api.config.latency_ms:
            server.stopping.wait(server.api.config.latency_ms / 1000)
        request = Request(method, path, body, self.headers.get("Authorization"), query)
        answer = server.api.handle(request)
        server.record(arrived, method, path, query, answer, answer.drop)
        if answer.stall_s:
            server.stopping.wait(answer.stall_s)
        if answer.drop:
            self.close_connection = True
            return
        self._respond(answer)

    def _respond(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD" or not answer.body:
            return
        if answer.drip_s:
            self._drip(answer.body, answer.drip_s)
        else:
            self.wfile.write(answer.body)

    def _drip(self, body: bytes, delay: float) -> None:
        """One byte, then a pause, and so on: a slow link's answer; ``stop()`` cuts it short."""
        self.wfile.flush()
        for i in range(len(body)):
            if self.server.stopping.wait(delay):
                self.close_connection = True
                return
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
