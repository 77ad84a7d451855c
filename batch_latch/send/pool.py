"""Workers that share one feed of tasks, and the signals that stop them (Ctrl-C, SIGTERM,
SIGHUP).

The pool knows nothing of HTTP: each worker takes the next task, calls ``work`` and hands
the outcome to ``done`` (which makes it durable) before taking another. An exception in a
worker (the ledger could not be written) stops the feed and is raised in the caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from batch_latch import terminal
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import SIGNAL_STOPS, StopReason

T = TypeVar("T")
R = TypeVar("R")


class Pool(Generic[T, R]):
    def __init__(self, throttle: Throttle, workers: int) -> None:
        self._throttle = throttle
        self._workers = workers

    def run(
        self,
        tasks: Sequence[T],
        work: Callable[[T], R],
        done: Callable[[T, R], None],
    ) -> list[R | None]:
        """Outcomes in task order; None for tasks never started (the run stopped)."""
        results: list[R | None] = [None] * len(tasks)
        feed = iter(range(len(tasks)))
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while self._throttle.stop_reason is None:
                    with lock:
                        k = next(feed, None)
                    if k is None:
                        return
                    outcome = work(tasks[k])
                    done(tasks[k], outcome)
                    results[k] = outcome
            except BaseException as exc:  # the ledger failed: stop all, raise in the caller
                errors.append(exc)
                self._throttle.stop(StopReason.LEDGER_ERROR)

        threads = [
            threading.Thread(target=worker, name=f"latch-{i}", daemon=True)
            for i in range(min(self._workers, max(1, len(tasks))))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins: the main thread must see Ctrl-C
        if errors:
            raise errors[0]
        return results


#: The signals that stop a run the orderly way, and what each stop is called.
_SIGNALS: dict[str, StopReason] = {
    "SIGINT": StopReason.INTERRUPTED,
    "SIGTERM": StopReason.TERMINATED,
    "SIGHUP": StopReason.HANGUP,  # not on Windows
}
_AGAIN = {
    StopReason.INTERRUPTED: " (Ctrl-C again to quit at once)",
    StopReason.TERMINATED: " (SIGTERM or Ctrl-C again to quit at once)",
}


class StopSignals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP, the first of them: no new requests, in-flight
    ones finish (bounded by --timeout), reports are written. A second Ctrl-C or SIGTERM
    cuts the requests in flight and leaves at once (every recorded outcome is already on
    disk). A SIGHUP mutes the terminal first (nothing written there can fail the stop);
    another SIGHUP changes nothing (a hung-up shell passes its own on to its jobs).

    Installed for a whole command (:meth:`installed`, from opening the job to publishing its
    reports): a signal before the first request stops the run before it sends any; one
    while the reports are written lets them finish. :meth:`during` binds the sending."""

    _active: StopSignals | None = None

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._throttle: Throttle | None = None
        self._say: Callable[[str], None] = lambda text: None
        self._abort: Callable[[], None] | None = None
        self.first: StopReason | None = None

    def _handle(self, signum: int, frame: object) -> None:
        reason = _SIGNALS[signal.Signals(signum).name]
        if reason is StopReason.HANGUP:
            terminal.mute_terminals()
        if self.first is not None:
            if reason is StopReason.HANGUP:
                return
            if self._abort is not None:
                self._abort()
            os._exit(SIGNAL_STOPS[reason])
        self.first = reason
        if self._throttle is not None:
            self._throttle.stop(reason)
            self._say(f"\nStopping: waiting for requests in flight{_AGAIN.get(reason, '')}...")

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[StopSignals]:
        """Handle the three signals for the span (only the main thread can)."""
        stops = cls()
        if threading.current_thread() is not threading.main_thread() or cls._active:
            yield stops
            return
        for name in _SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                stops._previous[number] = signal.signal(number, stops._handle)
        cls._active = stops
        try:
            yield stops
        finally:
            cls._active = None
            for number, previous in stops._previous.items():
                signal.signal(number, previous)

    @classmethod
    @contextmanager
    def during(
        cls, throttle: Throttle, say: Callable[[str], None], abort: Callable[[], None] | None
    ) -> Iterator[None]:
        """A signal stops ``throttle`` (one that came already stops it at once)."""
        with contextlib.ExitStack() as stack:
            stops = cls._active or stack.enter_context(cls.installed())
            stops._throttle, stops._say, stops._abort = throttle, say, abort
            if stops.first is not None:
                throttle.stop(stops.first)
            try:
                yield
            finally:
                stops._throttle, stops._abort = None, None
