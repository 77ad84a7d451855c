"""Fixtures for the sandbox tests: sandboxes on free loopback ports, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from batch_latch.sandbox import DEFAULT_API_KEY, Sandbox

from .helpers import LONG, MakeSandbox


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    started: list[Sandbox] = []

    def factory(**overrides: Any) -> Sandbox:
        overrides.setdefault("minute_seconds", LONG)
        sandbox = Sandbox(port=0, **overrides).start()
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Basic {DEFAULT_API_KEY}"
    yield session
    session.close()
