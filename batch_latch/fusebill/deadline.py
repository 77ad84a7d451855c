"""A whole-request deadline for requests, without a thread per request.

Each request takes a :class:`Ticket` from its client's :class:`Deadlines`: a heap of
deadlines watched by one thread that sleeps until the earliest one. The HTTP connections
made by :func:`watched_adapter` tell the ticket of the request being sent on this thread
(:data:`CURRENT`) which connection and socket carry it; when a deadline passes before the
request is done, the watchdog shuts that socket down, and the thread blocked on it wakes at
once. ``abort()`` does the same to every request in flight.

The TLS handshake needs no cut: Python bounds a whole handshake by the socket's timeout,
which the client sets to the time left.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import socket
import threading
import time
from typing import Any


class Ticket:
    __slots__ = ("aborted", "conn", "deadline", "done", "expired", "owner", "sock")

    def __init__(self, owner: Deadlines, deadline: float) -> None:
        self.owner = owner
        self.deadline = deadline
        self.conn: Any = None  # the urllib3 connection carrying the request, once known
        self.sock: socket.socket | None = None  # its socket once connected (kept when the
        # connection lets go of it: an answer with "Connection: close" still reads from it)
        self.done = self.expired = self.aborted = False


class Deadlines:
    """A heap of deadlines and one watchdog thread that cuts whatever runs past its own."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Ticket]] = []
        self._live: set[Ticket] = set()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake_at = float("inf")  # when the watchdog wakes next by itself

    def start(self, timeout: float) -> Ticket:
        ticket = Ticket(self, time.monotonic() + timeout)
        with self._cond:
            if self._thread is None:
                self._closed = False
                self._thread = threading.Thread(target=self._watch, name="deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (ticket.deadline, next(self._seq), ticket))
            self._live.add(ticket)
            if ticket.deadline < self._wake_at:  # rare: deadlines mostly come in order
                self._cond.notify()
        return ticket

    def bind(self, ticket: Ticket, conn: Any, sock: socket.socket | None) -> None:
        with self._cond:
            if ticket.expired:
                raise TimeoutError("the request's deadline has passed")
            ticket.conn = conn
            if sock is not None:
                ticket.sock = sock

    def finish(self, ticket: Ticket) -> tuple[bool, bool]:
        """Mark ``ticket`` done; (expired, aborted)."""
        with self._cond:
            ticket.done = True
            ticket.conn = ticket.sock = None
            self._live.discard(ticket)
            heap = self._heap
            while heap and heap[0][2].done:
                heapq.heappop(heap)
            return ticket.expired, ticket.aborted

    def abort(self) -> None:
        with self._cond:
            for ticket in self._live:
                ticket.expired = ticket.aborted = True
                _cut(ticket)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][2].done or heap[0][0] <= now):
                    ticket = heapq.heappop(heap)[2]
                    if not ticket.done:
                        ticket.expired = True
                        _cut(ticket)
                self._wake_at = heap[0][0] if heap else float("inf")
                self._cond.wait(heap[0][0] - now if heap else None)


def _cut(ticket: Ticket) -> None:
    """Shut the request's socket down: a thread blocked on it wakes at once. A closed
    socket object has let go of its descriptor, so this never reaches another's socket."""
    for sock in (ticket.sock, getattr(ticket.conn, "sock", None)):
        if sock is not None:
            # socket.socket's own shutdown: for TLS too, without touching the TLS state
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


CURRENT = threading.local()  # .ticket: the request this thread is sending now


def _bind(conn: Any, sock: socket.socket | None = None) -> None:
    ticket: Ticket | None = getattr(CURRENT, "ticket", None)
    if ticket is not None:
        ticket.owner.bind(ticket, conn, sock)


@functools.cache
def watched_adapter() -> Any:
    """An HTTPAdapter whose connections tell the current ticket which socket they use."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class WatchedHTTP(HTTPConnection):
        def connect(self) -> None:
            _bind(self)
            super().connect()
            _bind(self, self.sock)

        def request(self, *args: Any, **kwargs: Any) -> None:
            _bind(self, self.sock)  # a kept-alive connection does not connect again
            super().request(*args, **kwargs)
            _bind(self, self.sock)

    class WatchedHTTPS(HTTPSConnection):
        def connect(self) -> None:
            _bind(self)
            super().connect()
            _bind(self, self.sock)

        def request(self, *args: Any, **kwargs: Any) -> None:
            _bind(self, self.sock)
            super().request(*args, **kwargs)
            _bind(self, self.sock)

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPS

    pools = {"http": HTTPPool, "https": HTTPSPool}

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return WatchedAdapter
