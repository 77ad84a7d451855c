"""``--notify`` for one command: a message when a quota wait starts and one when it ends.

The wait is told from the worker that met the spent quota, on a thread of its own (no
worker waits on a webhook); the ending waits for that message first, so a receiver sees
them in order. Every message goes through :class:`~batch_latch.notify.Notifier`: bounded,
one retry, never raises, one stderr line when it fails.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from batch_latch.notify import DEADLINE, Event, Notifier, event_for
from batch_latch.send.attempt_loop import QuotaWait
from batch_latch.settings import Settings


class Announcer:
    """Tells the command's webhook; ``facts`` are the summary keys known before it ends."""

    def __init__(self, notifier: Notifier, job: Path, facts: Mapping[str, Any]) -> None:
        self._notifier = notifier
        self._job = job
        self._facts = dict(facts)
        self._lock = threading.Lock()
        self._pending: list[threading.Thread] = []

    @classmethod
    def open(cls, settings: Settings, err: TextIO, facts: Mapping[str, Any]) -> Announcer | None:
        """None without ``--notify`` (the URL was checked when the settings were made)."""
        if settings.notify is None:
            return None
        notifier = Notifier(
            settings.notify.get_secret_value(), env=settings.env, key=settings.api_key, stderr=err
        )
        return cls(notifier, settings.out.absolute(), facts)

    def waiting(self, wait: QuotaWait) -> None:
        """A quota wait starts: post it without holding up the worker that met it."""
        facts = {**self._facts, "requests": wait.requests}
        thread = threading.Thread(
            target=self._notifier.send,
            args=(Event.WAITING, self._job, facts),
            kwargs={"until": wait.until},
            name="notify-waiting",
            daemon=True,
        )
        with self._lock:
            self._pending.append(thread)
        thread.start()

    def ended(self, summary: Mapping[str, Any]) -> None:
        """The command ended (its reports are written): finished, stopped or interrupted."""
        self._flush()
        self._notifier.send(event_for(int(summary["exit_code"])), self._job, summary)

    def stopped(self, line: str) -> None:
        """The command stopped on an error after requests went out (exit 3): no summary was
        written, so the message carries what is known and the error's line."""
        self._flush()
        facts = {**self._facts, "exit_code": 3, "stop_message": line}
        self._notifier.send(Event.STOPPED, self._job, facts)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for thread in pending:
            thread.join(DEADLINE + 2.0)  # send() is bounded by the deadline itself
