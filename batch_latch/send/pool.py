"""Workers that share one feed of tasks, and Ctrl-C handling for them.

The pool knows nothing of HTTP: each worker takes the next task, calls ``work`` and hands
the outcome to ``done`` (which makes it durable) before taking another. An exception in a
worker (the checkpoint could not be written) stops the feed and is raised in the caller.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from batch_latch.send.throttle import Throttle
from batch_latch.vocab import ExitCode, StopReason

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
            except BaseException as exc:  # the checkpoint failed: stop all, raise in the caller
                errors.append(exc)
                self._throttle.stop(StopReason.CHECKPOINT_ERROR)

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


class CtrlC:
    """First Ctrl-C: no new requests, in-flight ones finish (bounded by --timeout). Second:
    cut the requests in flight and leave at once (every recorded outcome is already on disk)."""

    def __init__(
        self,
        throttle: Throttle,
        say: Callable[[str], None],
        abort: Callable[[], None] | None = None,
    ) -> None:
        self._throttle = throttle
        self._say = say
        self._abort = abort
        self._previous: Any = None
        self._active = threading.current_thread() is threading.main_thread()
        self._count = 0

    def _handle(self, signum: int, frame: object) -> None:
        self._count += 1
        if self._count > 1:
            if self._abort is not None:
                self._abort()
            os._exit(ExitCode.INTERRUPTED)
        self._throttle.stop(StopReason.INTERRUPTED)
        self._say("\nStopping: waiting for requests in flight (Ctrl-C again to quit at once)...")

    def __enter__(self) -> CtrlC:
        if self._active:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
