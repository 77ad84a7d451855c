"""Progress behind one small interface: a tqdm bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def row_done(self, status: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    def start(self, total: int) -> None:
        pass

    def row_done(self, status: str) -> None:
        pass

    def close(self) -> None:
        pass


class Bar:
    """Rows done, rate and ETA, with live counts of success / not found / failed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._counts = {"success": 0, "not_found": 0, "failed": 0}
        self._bar: object | None = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, file=self._stream, unit="row", dynamic_ncols=True)

    def row_done(self, status: str) -> None:
        with self._lock:
            if status in self._counts:
                self._counts[status] += 1
            bar = self._bar
            if bar is not None:
                bar.set_postfix(  # type: ignore[attr-defined]
                    ok=self._counts["success"],
                    not_found=self._counts["not_found"],
                    failed=self._counts["failed"],
                    refresh=False,
                )
                bar.update(1)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]
