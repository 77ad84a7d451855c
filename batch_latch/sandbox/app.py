"""``Sandbox``: the server plus its state, started and stopped by tests, benchmarks and the CLI."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from .config import SandboxConfig
from .customers import is_known_customer
from .log import LoggedRequest, RequestLog
from .routes import Answer, Api, base_url_for
from .server import Server, tls_context


class Sandbox:
    """The server plus its state; ``Sandbox(port=0, profile="sandbox")`` for short."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else SandboxConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.api = Api(self.config)
        self._stopping = threading.Event()
        self._log: RequestLog | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread.

        Raises OSError when the port is taken or the log cannot be opened, ValueError when the
        TLS certificate or key cannot be used.
        """
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a Sandbox can be started once")
        tls = tls_context(self.config)
        self._log = RequestLog(self.config.log_path)
        try:
            self._server = Server(self.api, self._record, self._stopping, tls)
        except BaseException:
            self._log.close()
            raise
        self.api.base_url = self.base_url  # before the first request: customers' ``uri``
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="batch-latch-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up on open connections and close the log; safe to call twice."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            # shutdown() waits for serve_forever's next poll; a connection wakes it at once.
            stopper = threading.Thread(target=server.shutdown, daemon=True)
            stopper.start()
            while stopper.is_alive():
                server.poke()
                stopper.join(0.05)
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return base_url_for(self.config, self.port)

    # state

    def requests_log(self) -> list[LoggedRequest]:
        """A copy of every request seen so far, oldest first."""
        return self._log.entries() if self._log is not None else []

    def geotab_id_of(self, fusebill_id: int) -> str | None:
        return self.api.customers.get(fusebill_id).geotab_id

    def set_geotab_id(self, fusebill_id: int, value: str | None) -> None:
        """Arrange state for a test (``None`` unlatches); only known customers have any."""
        if not is_known_customer(fusebill_id):
            raise ValueError(f"{fusebill_id} is not a sandbox customer")
        self.api.customers.store(fusebill_id, value)

    def _record(
        self, at: float, method: str, path: str, query: str, answer: Answer, dropped: bool
    ) -> None:
        if self._log is None:
            return
        note = answer.note + ("; connection dropped" if dropped else "")
        status = None if dropped else answer.status
        entry = LoggedRequest(
            at, method, path, answer.fusebill_id, answer.geotab_id, status, note, query
        )
        self._log.add(entry)
