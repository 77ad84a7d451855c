"""Progress behind one small interface: a tqdm bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def row_done(self, status: str) -> None: ...
    def paused(self, text: str) -> None: ...
    def write(self, line: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    """No bar: lines still reach the stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        pass

    def row_done(self, status: str) -> None:
        pass

    def paused(self, text: str) -> None:
        pass

    def write(self, line: str) -> None:
        # One write call per line, under a lock: workers' notices never run together.
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        pass


class Bar:
    """Rows done, rate and ETA, live counts, and why it is paused when it is."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._counts = {"success": 0, "not_found": 0, "failed": 0}
        self._bar: Any = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, file=self._stream, unit="row", dynamic_ncols=True)

    def row_done(self, status: str) -> None:
        with self._lock:
            if status in self._counts:
                self._counts[status] += 1
            if self._bar is not None:
                self._bar.set_description_str("", refresh=False)
                self._bar.set_postfix(
                    ok=self._counts["success"],
                    not_found=self._counts["not_found"],
                    failed=self._counts["failed"],
                    refresh=False,
                )
                self._bar.update(1)

    def paused(self, text: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_description_str(text)

    def write(self, line: str) -> None:
        with self._lock:
            if self._bar is None:
                self._stream.write(line + "\n")
                self._stream.flush()
            else:
                self._bar.write(line, file=self._stream)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
