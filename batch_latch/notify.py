"""``--notify URL``: one JSON POST to a webhook when a command ends or a quota wait starts.

Nobody watches the stderr of a job that runs for days from cron, so the tool tells a chat
room (Slack and Teams incoming webhooks show the ``text`` key as it is) or any receiver:
``{"text", "event", "job", "summary"}``. A notification is a courtesy, never part of the
job: it takes at most :data:`DEADLINE` seconds in all, is retried once, and a failure is
one stderr line that changes no exit code and no report.

The URL usually holds the webhook's token (Slack's is its path, Teams' its query), so it
is shown only as ``scheme://host/…`` and never written anywhere. The API key never goes
there: no ``Authorization`` header, and the body is redacted with :class:`Redactor`.
It goes through the client's transport (:mod:`batch_latch.fusebill.transport`): the same
proxy and CA variables, the same session, deadline and reading of failures as for
Fusebill; ``~/.netrc`` is never read.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from batch_latch import __version__
from batch_latch.environment import NOTIFY_VARIABLE, is_loopback
from batch_latch.errors import ConfigError
from batch_latch.fusebill.proxies import Route, proxy_secrets, route_for
from batch_latch.fusebill.redact import Redactor
from batch_latch.fusebill.transport import Failure, Transport, TransportError
from batch_latch.vocab import SIGNAL_NAMES, SIGNAL_STOPS, STATUSES, STOP_ADVICE, StopReason, Word

VARIABLE = NOTIFY_VARIABLE
#: Seconds one notification may take in all, both attempts and the pause between them.
DEADLINE = 10.0
_RETRY_PAUSE = 0.5  # before the retry; a retry with less time than this left is not made
_WHERE = f"--notify (or {VARIABLE})"
#: The signal behind each signal stop's exit code (129, 130, 143), as a person names it.
_SIGNALS = {int(SIGNAL_STOPS[r]): name for r, name in SIGNAL_NAMES.items()}
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]+)?")
Job = str | Path  # the job folder, OUT
Facts = Mapping[str, Any]  # summary.json's keys (a summary taken mid-run works too)
When = datetime | None  # when a quota wait ends


class Event(Word):
    """The ``event`` key: why this notification was sent."""

    FINISHED = "finished"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    WAITING = "waiting"  # a quota wait starts (--wait-for-quota)


def event_for(exit_code: int) -> Event:
    """The ending event for a command's exit code (3: stopped; 129, 130, 143: interrupted)."""
    if exit_code in _SIGNALS:
        return Event.INTERRUPTED
    return Event.STOPPED if exit_code == 3 else Event.FINISHED


# --- the URL ---------------------------------------------------------------------------------


def shown(url: str) -> str:
    """``scheme://host/…``: all of the URL a person may see (never raises).

    Everything after the host (path, query, fragment) may be a token, and so may a
    ``user:pass@``; the port is kept, it tells two local receivers apart."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme.isascii() or not scheme.isalpha():
        return "the notify URL"
    authority = rest
    for stop in "/?#\\":
        authority = authority.split(stop, 1)[0]
    host = authority.rpartition("@")[2]
    if not _HOST.fullmatch(host):  # e.g. a password with a "/" in it: show none of it
        return f"{scheme.lower()}://…"
    return f"{scheme.lower()}://{host.lower()}/…"


def check_url(url: str) -> str:
    """The URL, stripped, if a notification may go there; else :class:`ConfigError` with one
    line that shows neither the path, the query nor any credentials."""
    url = url.strip()
    if not url:
        raise ConfigError(f"{_WHERE} is empty: give the webhook's https:// URL")
    if any(c <= " " or c == "\x7f" for c in url):
        raise ConfigError(f"{_WHERE} contains spaces or control characters: copy it again")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{_WHERE} is not a valid URL ({shown(url)})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{_WHERE} must be an https:// URL")
    if "@" in parts.netloc:
        raise ConfigError(
            f"{_WHERE} must not hold a user name or password (user:pass@): "
            f"{shown(url)}; a webhook's token belongs in its path"
        )
    if not host:
        raise ConfigError(f"{_WHERE} has no host: {shown(url)}")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"{_WHERE} must use https:// (plain http only for localhost): {shown(url)}"
        )
    return url


def notify_url(option: str | None, env: Mapping[str, str]) -> str | None:
    """The checked URL from ``--notify`` or else :data:`VARIABLE`; None when neither is set.
    For argument time: a bad URL stops the command before anything is sent."""
    value = option if option is not None else env.get(VARIABLE)
    if value is None or (option is None and not value.strip()):
        return None  # an empty variable is unset, as for the proxy variables
    return check_url(value)


# --- the message -----------------------------------------------------------------------------


def _n(count: int, word: str, plural: str = "") -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def _counts(summary: Mapping[str, Any]) -> str:
    """``1,000 rows: 990 success, 10 failed`` (statuses in the report's order)."""
    counts = summary.get("counts") or {}
    rows = int(summary.get("rows") or sum(counts.values()))
    parts = [f"{int(counts[s]):,} {s.replace('_', ' ')}" for s in STATUSES if counts.get(s)]
    return _n(rows, "row") + (f": {', '.join(parts)}" if parts else "")


def _next_step(event: Event, job: str, summary: Mapping[str, Any]) -> str:
    """What a person should do now, in a few words."""
    if event is Event.WAITING:
        return "nothing to do: it goes on by itself after the reset"
    if event is Event.INTERRUPTED:
        return "resume with the same command"
    if event is Event.STOPPED:
        reason = str(summary.get("stop_reason") or "")
        known = reason in {r.value for r in StopReason}
        if known:
            return STOP_ADVICE[StopReason(reason)]
        return "see the command's stderr, then run the same command again"
    counts = summary.get("counts") or {}
    kind = summary.get("kind") or "run"
    if kind == "plan" and not any(counts.get(s) for s in ("invalid", "not_found", "failed")):
        return "review results.csv, then write it with: batch-latch run INPUT --plan latest"
    if kind == "undo" and any(counts.get(s) for s in ("failed", "pending")):
        return "see failed.csv for the customers undo left alone"
    if any(counts.get(s) for s in ("invalid", "not_found", "failed", "pending")):
        return f"fix the rows in failed.csv and feed it back with --out {job}"
    return "nothing left to do"


def _happened(event: Event, summary: Mapping[str, Any], until: datetime | None) -> str:
    code = summary.get("exit_code")
    if event is Event.WAITING:
        when = f" (until {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC)" if until else ""
        return f"is waiting for the daily quota to reset{when}"
    if event is Event.INTERRUPTED:
        by = _SIGNALS.get(code, "") if isinstance(code, int) else ""
        return f"was interrupted{f' ({by})' if by else ''}"
    if event is Event.STOPPED:
        reason = str(summary.get("stop_reason") or "").replace("_", " ")
        return f"stopped early{f' ({reason})' if reason else ''}"
    return "finished" + (" with rows to look at" if code == 1 else "")


def text_for(event: Event, job: Job, summary: Facts, *, until: When = None) -> str:
    """The one line a person reads: the job, what happened, the counts, what to do next.

    ``until`` is when a quota wait ends (for :attr:`Event.WAITING`). Missing summary keys
    are left out, so a summary taken mid-run works too."""
    event = Event(event)
    kind = str(summary.get("kind") or "run")
    host = summary.get("host")
    where = f"{job}" + (f" on {host}" if host else "")
    line = f"batch-latch {kind} in {where} {_happened(event, summary, until)}. {_counts(summary)}"
    requests = summary.get("requests")
    if isinstance(requests, int) and requests:
        line += f"; {_n(requests, 'request')} sent"
    line += f". Next: {_next_step(event, str(job), summary)}."
    return " ".join(line.split())  # one line, whatever the summary held


def body_for(event: Event, job: Job, summary: Facts, *, until: When = None) -> dict[str, Any]:
    """The JSON that is posted (Slack and Teams show ``text``; scripts read the rest)."""
    event = Event(event)
    return {
        "text": text_for(event, job, summary, until=until),
        "event": event.value,
        "job": str(job),
        "summary": dict(summary),
    }


# --- sending ---------------------------------------------------------------------------------


class _Failed(Exception):
    """One attempt's failure: ``str`` is its reason; ``retry`` whether a second try may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


@dataclass(frozen=True)
class Notifier:
    """Posts notifications to one checked URL; :meth:`send` never raises.

    ``env`` holds the proxy and CA variables (the command's environment with ``.env``);
    ``key`` is the API key, redacted from everything sent; ``stderr`` gets the one line a
    failure prints (``sys.stderr`` at the time of sending when None)."""

    url: str = field(repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    key: SecretStr | str | None = field(default=None, repr=False)
    stderr: TextIO | None = field(default=None, repr=False)
    deadline: float = DEADLINE
    route: Route = field(init=False, repr=False, compare=False)  # proxies and CA, from env

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", check_url(self.url))
        # here, in the thread that makes the notifier: never on the sending helper thread
        object.__setattr__(self, "route", route_for(self.url, self.env))

    def __repr__(self) -> str:
        return f"Notifier({shown(self.url)!r})"

    def send(self, event: Event, job: Job, summary: Facts, *, until: When = None) -> bool:
        """Post one notification; True when the receiver answered 2xx, else one stderr line.
        Waits at most ``deadline`` seconds, whatever the network does: the request runs on a
        helper thread, since name resolution cannot be cut otherwise."""
        once = threading.Lock()  # taken by the first line printed, never released: one line
        outcome: list[bool] = []
        started = time.monotonic()
        try:
            body = self._redactor().scrub(body_for(event, job, summary, until=until))
            data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
            worker = threading.Thread(
                target=lambda: outcome.append(self._deliver(data, once)), daemon=True
            )
            worker.start()
            worker.join(self.deadline + 1.0)  # the watchdog cuts at the deadline itself
        except Exception as exc:  # a summary that is not JSON, no thread: still one line
            self._say(f"could not be sent ({type(exc).__name__})", once)
            return False
        if not outcome:
            self._say(f"no answer within {time.monotonic() - started:.0f} s", once)
        return bool(outcome and outcome[0])

    def _deliver(self, data: bytes, once: threading.Lock) -> bool:
        """Two attempts at most, within one deadline for both and the pause between."""
        end = time.monotonic() + self.deadline
        transport = Transport(self.route, _HEADERS)
        try:
            try:
                self._post(transport, data, end)
            except _Failed as first:
                if not first.retry or end - time.monotonic() < 2 * _RETRY_PAUSE:
                    raise
                time.sleep(_RETRY_PAUSE)
                try:
                    self._post(transport, data, end)
                except _Failed as second:
                    raise _Failed(f"{second} (tried twice)", retry=False) from None
        except _Failed as failed:
            self._say(str(failed), once)
            return False
        except Exception as exc:  # never the job's problem: one line, no traceback
            self._say(f"could not be sent ({type(exc).__name__})", once)
            return False
        finally:
            transport.close()
        return True

    def _post(self, transport: Transport, data: bytes, end: float) -> None:
        """One attempt, cut at ``end``; raises :class:`_Failed`. The status is the answer:
        the body is never read."""
        left = max(end - time.monotonic(), 0.001)
        try:
            answer = transport.send("POST", self.url, data=data, timeout=left, cap=None)
        except TransportError as failed:
            retry = failed.kind not in (Failure.DEADLINE, Failure.CA_SETTING)
            raise _Failed(_reason(failed, self.deadline), retry=retry) from None
        _check_status(answer.status)

    def _say(self, reason: str, once: threading.Lock) -> None:
        """The one stderr line; a closed or gone stderr (SIGHUP) is not an error."""
        if not once.acquire(blocking=False):
            return  # this notification has had its line
        line = f"notification to {shown(self.url)} failed: {self._scrubbed(reason)}"
        try:
            out = self.stderr if self.stderr is not None else sys.stderr
            out.write(" ".join(line.split()) + "\n")
            out.flush()
        except (OSError, ValueError):
            pass

    def _redactor(self) -> Redactor:
        key = self.key.get_secret_value() if isinstance(self.key, SecretStr) else self.key
        return Redactor(key or "", also=proxy_secrets(self.env))  # the client's redaction

    def _scrubbed(self, text: str) -> str:
        """``text`` without the key and without any piece of the URL's path or query that
        could be its token (a belt: the reasons are built without them)."""
        text = self._redactor()(text)
        parts = urlsplit(self.url)
        pieces = [parts.path, parts.query, parts.fragment, *parts.path.split("/")]
        pieces += [v for pair in parse_qsl(parts.query) for v in pair]
        for piece in sorted({p for p in pieces if len(p) >= 8}, key=len, reverse=True):
            text = text.replace(piece, "…")
        return text


_HEADERS = {"Content-Type": "application/json", "User-Agent": f"batch-latch/{__version__}"}


def _check_status(status: int) -> None:
    """2xx is success; 5xx may pass with a retry; a redirect is never followed."""
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise _Failed(f"HTTP {status} (a redirect: not followed)", retry=False)
    raise _Failed(f"HTTP {status}", retry=status >= 500)


def _reason(failed: TransportError, deadline: float) -> str:
    """A few words on why a request failed, from the exception types only: their texts
    carry the URL's path, which may be the webhook's token."""
    if failed.kind in (Failure.DEADLINE, Failure.TIMEOUT):
        return f"no answer within {deadline:g} s"
    if failed.kind is Failure.TLS:
        return f"{failed.words} (see REQUESTS_CA_BUNDLE)"
    if failed.kind is Failure.PROXY:
        return f"{failed.words} (see HTTPS_PROXY, NO_PROXY)"
    return failed.words
