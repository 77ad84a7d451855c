"""The request log: what the sandbox saw, for tests and benchmarks to count and inspect."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .listing import asked_ids, is_list_route


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the sandbox saw it; ``status`` is None when the connection was dropped.

    ``query`` is the raw query string (a customer list's ``query=id:...&pageSize=...``), so
    tests can count list requests (``is_list``) and the customers each asked for.
    """

    at: float
    method: str
    path: str
    fusebill_id: int | None
    geotab_id: str | None
    status: int | None
    note: str
    query: str = ""

    @property
    def is_list(self) -> bool:
        """Whether this was a customer-list request (``GET /v1/customers?...``)."""
        return is_list_route(self.method, self.path)

    @property
    def asked_ids(self) -> tuple[int, ...]:
        """The ids a list request asked for, in id order; empty for any other request."""
        return asked_ids(self.query) if self.is_list else ()


class RequestLog:
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
