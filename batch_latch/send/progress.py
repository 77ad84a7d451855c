"""Progress behind one small interface: a tqdm bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def row_done(self, status: str) -> None: ...
    def paused(self, text: str, seconds: float = 0.0) -> None: ...
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

    def paused(self, text: str, seconds: float = 0.0) -> None:
        pass

    def write(self, line: str) -> None:
        # One write call per line, under a lock: workers' notices never run together.
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        pass


class Bar:
    """Rows done, rate and time left, live counts, and why it is paused when it is.

    During a pause the counts and the time left stay where they are, and the pause follows
    them with a countdown (refreshed every second by a small ticker thread). The time left
    is the whole run's average pace (``smoothing=0``), so it does not swing across a pause
    the way a recent-rate estimate does (from seconds to half an hour, and back)."""

    #: At most this much of a pause's cause is shown: the counts and time left come first.
    CAUSE_WIDTH = 48

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._counts = {"success": 0, "not_found": 0, "failed": 0}
        self._bar: Any = None
        self._pause_text = ""
        self._pause_end = 0.0  # time.monotonic() when the pause ends; 0: none
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, file=self._stream, unit="row", dynamic_ncols=True, smoothing=0
        )
        self._show(refresh=True)

    def row_done(self, status: str) -> None:
        with self._lock:
            if status in self._counts:
                self._counts[status] += 1
            if self._bar is not None:
                if self._pause_end <= time.monotonic():
                    self._pause_text, self._pause_end = "", 0.0
                self._show(refresh=False)
                self._bar.update(1)

    def paused(self, text: str, seconds: float = 0.0) -> None:
        with self._lock:
            self._pause_text = text
            self._pause_end = time.monotonic() + seconds if text and seconds > 0 else 0.0
            if self._bar is not None:
                self._show(refresh=True)
            if self._pause_end and self._ticker is None and self._bar is not None:
                self._ticker = threading.Thread(target=self._tick, name="bar-tick", daemon=True)
                self._ticker.start()

    def _tick(self) -> None:
        """Once a second, redraw the countdown of a pause under way."""
        while not self._stop.wait(1.0):
            with self._lock:
                if self._bar is None:
                    return
                if self._pause_end:
                    if self._pause_end <= time.monotonic():
                        self._pause_text, self._pause_end = "", 0.0
                    self._show(refresh=True)

    def _show(self, *, refresh: bool) -> None:
        c = self._counts
        text = f"ok={c['success']:,}, not_found={c['not_found']:,}, failed={c['failed']:,}"
        if self._pause_text:
            left = max(0.0, self._pause_end - time.monotonic())
            cause = self._pause_text
            if len(cause) > self.CAUSE_WIDTH:
                cause = cause[: self.CAUSE_WIDTH - 1] + "…"
            text += f" | paused, {left:.0f} s left: {cause}" if self._pause_end else f" | {cause}"
        self._bar.set_postfix_str(text, refresh=refresh)

    def write(self, line: str) -> None:
        with self._lock:
            if self._bar is None:
                self._stream.write(line + "\n")
                self._stream.flush()
            else:
                self._bar.write(line, file=self._stream)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(2.0)
