"""Fusebill over HTTP: send one request and hand back what came, as a :class:`Reply`.

The client never retries or sleeps (the runner does, so one throttle sees every attempt),
never follows a redirect (the key must not travel) and never reads ``~/.netrc``: the key
header is the only credential. What an answer means is :mod:`batch_latch.fusebill.answers`.

- Requests go through :class:`~batch_latch.fusebill.transport.Transport`: proxies and the CA
  bundle from the standard variables in ``env`` (:mod:`batch_latch.fusebill.proxies`), one
  keep-alive connection per worker thread, never reused once its state is in doubt.
- ``timeout`` bounds the whole request, connect to last byte (one watchdog thread per
  client, :mod:`batch_latch.fusebill.deadline`). :meth:`FusebillClient.abort` cuts every
  request in flight the same way.
- Bodies over :data:`MAX_BODY` are not read further: ``ReplyError.TOO_LARGE``; a customer list
  answer may be 8 KiB per customer asked (:func:`list_cap`), never less than that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from batch_latch import __version__
from batch_latch.fusebill.answers import Reply, ReplyError
from batch_latch.fusebill.listing import BYTES_PER_CUSTOMER, list_url
from batch_latch.fusebill.proxies import proxy_secrets, route_for
from batch_latch.fusebill.redact import Redactor
from batch_latch.fusebill.transport import Failure, Transport, TransportError

MAX_BODY = 1 << 20  # 1 MiB


class FusebillClient:
    """Fusebill's service over HTTP, safe to share between worker threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        environ: Mapping[str, str] = os.environ if env is None else env
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        # one redaction for every secret: the key and the proxies' passwords
        self._redact = Redactor(api_key, also=proxy_secrets(environ))
        self._transport = Transport(
            route_for(self._base, environ),
            {
                "Authorization": f"Basic {api_key}",  # already the whole credential: as is
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"batch-latch/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"FusebillClient({self._base!r}, timeout={self._timeout:g})"

    # --- the service -------------------------------------------------------------------------

    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        body = {"fusebillId": fusebill_id, "geotabId": geotab_id}
        return self._send("POST", f"{self._base}/Geotab/LatchCustomer", body)

    def unlatch(self, fusebill_id: int) -> Reply:
        body = {"fusebillId": fusebill_id}
        return self._send("POST", f"{self._base}/Geotab/UnlatchCustomer", body)

    def customer(self, fusebill_id: int) -> Reply:
        return self._send("GET", f"{self._base}/customers/{fusebill_id}", None)

    def customers(self, ids: Sequence[int], page: int = 0) -> Reply:
        """One page of Fusebill's customer list filtered to ``ids`` (1 to 1,000; cut them
        with :func:`batch_latch.fusebill.listing.batches`); judge it with ``classify_list``."""
        return self._send("GET", list_url(self._base, ids, page), None, list_cap(len(ids)))

    def first_customers(self, page_size: int) -> Reply:
        """The first page of the unfiltered customer list (``check`` without INPUT)."""
        url = f"{self._base}/customers?pageSize={page_size}&pageNumber=0"
        return self._send("GET", url, None, list_cap(page_size))

    def redact(self, text: str) -> str:
        return self._redact(text)

    def abort(self) -> None:
        """Cut every request in flight now (a second Ctrl-C): each returns at once."""
        self._transport.abort()

    def close(self) -> None:
        self._transport.close()

    # --- one request -------------------------------------------------------------------------

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None, cap: int = MAX_BODY
    ) -> Reply:
        try:
            answer = self._transport.send(method, url, json=body, timeout=self._timeout, cap=cap)
        except TransportError as failed:
            error, detail = self._failure(failed)
            return Reply(None, error=error, detail=detail, url=url)
        headers = {name: self._redact(value) for name, value in answer.headers.items()}
        if answer.body is None:
            size = headers.get("content-length")
            detail = f"answer of {size} bytes" if size else "answer"
            detail += f" over the {cap / MAX_BODY:g} MiB cap: not read further"
            return Reply(answer.status, None, headers, ReplyError.TOO_LARGE, detail=detail, url=url)
        body_read = _parse(answer.body, headers)
        if not (isinstance(body_read, (dict, list)) and self._redact.spares(answer.body)):
            body_read = self._redact.scrub(body_read)  # a JSON object or list: checked as bytes
        return Reply(answer.status, body_read, headers, url=url)

    def _failure(self, failed: TransportError) -> tuple[ReplyError, str]:
        """(error, detail) for a request with no complete answer; the detail keeps the cause."""
        kind, route = failed.kind, self._transport.route
        if kind is Failure.INTERRUPTED:
            return ReplyError.CONNECTION, failed.words
        if kind is Failure.DEADLINE:
            return ReplyError.TIMEOUT, f"no complete answer within {self._timeout:g} s"
        if kind is Failure.TIMEOUT:
            return ReplyError.TIMEOUT, f"no answer within {self._timeout:g} s"
        if kind is Failure.CONNECT_TIMEOUT:  # nothing was sent: as a refused connection
            return ReplyError.CONNECTION, f"could not connect within {self._timeout:g} s"
        if kind is Failure.CA_SETTING:
            return ReplyError.TLS, failed.words
        if kind is Failure.TLS:
            return ReplyError.TLS, self._redact(f"{failed.words} ({route.ca_note})")
        if kind is Failure.PROXY:
            text = f"proxy {route.shown_proxies()}: {failed.cause}"
            return ReplyError.PROXY, self._redact(text)[:300]
        return ReplyError.CONNECTION, self._redact(failed.cause)[:200]


# --- bodies ----------------------------------------------------------------------------------


def list_cap(count: int) -> int:
    """The most a list answer for ``count`` customers is read: 8 KiB each, at least 1 MiB."""
    return max(MAX_BODY, BYTES_PER_CUSTOMER * count)


def _parse(data: bytes, headers: Mapping[str, str]) -> Any:
    """Parsed JSON, else the text (``""`` for an empty body)."""
    if not data.strip():
        return ""
    try:
        return json.loads(data)
    except ValueError:  # not JSON, or not UTF-8/16/32
        pass
    from requests.utils import get_encoding_from_headers

    encoding = get_encoding_from_headers(dict(headers)) or "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")
