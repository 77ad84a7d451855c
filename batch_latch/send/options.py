"""What the engine takes from a command: plain frozen values, never the CLI's settings.

The command builds them (``Settings.engine()`` and ``Settings.rules()``); ``send/`` knows
nothing of flags, environment files or the job folder's layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from batch_latch.optiontypes import QuotaReserve
from batch_latch.send.attempt_loop import QuotaHook


@dataclass(frozen=True)
class EngineOptions:
    """The pace and the connection of one live command."""

    base_url: str
    api_key: SecretStr | None
    rate: float
    workers: int
    max_attempts: int
    timeout: float
    read_batch: int
    reserve: QuotaReserve
    max_requests: int | None = None
    wait_for_quota: bool = False
    progress: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    on_quota_wait: QuotaHook | None = None


@dataclass(frozen=True)
class RowRules:
    """What a run or plan does with each row: which earlier outcomes to send again, whether
    to read first, whether a relatch may replace what a customer holds."""

    planning: bool = False
    read_first: bool = True
    allow_relatch: bool = False
    keep_going: bool = False
    retry_not_found: bool = False
    retry_failed: bool = False
