"""Settings for one command, each option defined once.

An :class:`Option` is registered on argparse for the commands that take it, and
:func:`settings_from` builds the frozen :class:`Settings` from the parsed arguments by field
name, so a default lives in one place (twine registers its settings the same way). The key
and base URL come from the environment and ``.env``, never from the command line.

The key is a ``pydantic.SecretStr`` from the moment it is read, so a stray ``repr`` or log
line shows ``**********``, never the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from batch_latch.environment import (
    DEFAULT_BASE_URL as DEFAULT_BASE_URL,
)
from batch_latch.environment import (
    KEY_VARIABLE as KEY_VARIABLE,
)
from batch_latch.environment import (
    NOTIFY_VARIABLE as NOTIFY_VARIABLE,
)
from batch_latch.environment import (
    URL_VARIABLE as URL_VARIABLE,
)
from batch_latch.environment import (
    api_key as api_key,
)
from batch_latch.environment import (
    base_url as base_url,
)
from batch_latch.environment import (
    environment as environment,
)
from batch_latch.errors import ConfigError
from batch_latch.fusebill.proxies import check_proxies
from batch_latch.jobfolder.job import job_of_report
from batch_latch.optiontypes import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RATE,
    DEFAULT_READ_BATCH,
    DEFAULT_RESERVE,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    delimiter_type,
    fusebill_id_type,
    positive_float,
    positive_int,
    quota_reserve,
    read_batch_type,
)
from batch_latch.optiontypes import (
    QuotaReserve as QuotaReserve,
)
from batch_latch.vocab import RunKind, run_kind

if TYPE_CHECKING:
    from batch_latch.send.attempt_loop import QuotaHook
    from batch_latch.send.options import EngineOptions, RowRules

# Which commands take which option group.
INPUT = ("run", "plan")
PACE = ("run", "plan", "undo")
#: ``check`` takes run's input and pace options and --json, but no --out (it writes nothing).
SHEET = (*INPUT, "check")
CHECK_PACE = (*PACE, "check")


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag, help for ops, default and the commands taking it."""

    flag: str
    help: str
    commands: tuple[str, ...]
    default: Any = None
    type: Any = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.type is None and self.default is False

    def register(self, parser: argparse.ArgumentParser) -> None:
        text = self.help
        if self.default not in (None, False):
            text += (
                f" (default: {self.default:g})"
                if isinstance(self.default, float)
                else (f" (default: {self.default})")
            )
        text = text.replace("%", "%%")  # argparse formats help with %: "10%" is literal
        if self.is_switch:
            parser.add_argument(self.flag, action="store_true", help=text)
        else:
            parser.add_argument(
                self.flag, type=self.type, default=self.default, metavar=self.metavar, help=text
            )


OPTIONS: tuple[Option, ...] = (
    Option(
        "--dry-run",
        "check everything and write the reports; send nothing, no key needed",
        ("run", "undo"),
        default=False,
    ),
    Option(
        "--out",
        "job folder: its job.db, reports and run history (default: <INPUT folder>/"
        "<INPUT name>-latch/; for a report fed back from a job folder, that job folder)",
        INPUT,
        type=Path,
        metavar="DIR",
    ),
    Option(
        "--sheet",
        "worksheet of an .xlsx, ignoring case (default: the first visible one)",
        SHEET,
        metavar="NAME",
    ),
    Option(
        "--fusebill-column",
        "header of the fusebillId column, when it is not recognised",
        SHEET,
        metavar="NAME",
    ),
    Option(
        "--geotab-column",
        "header of the geotabId column, when it is not recognised",
        SHEET,
        metavar="NAME",
    ),
    Option(
        "--encoding",
        "CSV only: the file's encoding, e.g. utf-8, cp1252, utf-16 (default: detected)",
        SHEET,
        metavar="NAME",
    ),
    Option(
        "--delimiter",
        "CSV only: , ; tab or | (default: detected)",
        SHEET,
        type=delimiter_type,
        metavar="D",
    ),
    Option(
        "--rate",
        "most requests started per second, all workers together",
        CHECK_PACE,
        default=DEFAULT_RATE,
        type=positive_float,
        metavar="R",
    ),
    Option(
        "--workers",
        "requests in flight at once",
        CHECK_PACE,
        default=DEFAULT_WORKERS,
        type=positive_int,
        metavar="N",
    ),
    Option(
        "--max-attempts",
        "attempts per row for retryable errors (429s do not count)",
        CHECK_PACE,
        default=DEFAULT_MAX_ATTEMPTS,
        type=positive_int,
        metavar="K",
    ),
    Option(
        "--timeout",
        "seconds for a whole request, connect to last byte",
        CHECK_PACE,
        default=DEFAULT_TIMEOUT,
        type=positive_float,
        metavar="S",
    ),
    Option(
        "--max-requests",
        "send at most N requests this run (reads included), then stop",
        CHECK_PACE,
        type=positive_int,
        metavar="N",
    ),
    Option(
        "--read-batch",
        "customers read per request through Fusebill's customer list (1: one "
        "GET /customers/{id} each)",
        CHECK_PACE,
        default=DEFAULT_READ_BATCH,
        type=read_batch_type,
        metavar="N",
    ),
    Option(
        "--quota-reserve",
        "requests of the account's day left to other integrations: a count, or a percent "
        "of its daily limit",
        CHECK_PACE,
        default=DEFAULT_RESERVE,
        type=quota_reserve,
        metavar="Q",
    ),
    Option(
        "--keep-going",
        "do not stop when 25 rows in a row are refused by Fusebill",
        CHECK_PACE,
        default=False,
    ),
    Option(
        "--plan",
        "write exactly what a reviewed plan showed: a plan's run folder, or latest",
        ("run",),
        metavar="PLAN",
    ),
    Option(
        "--fresh",
        "start over: the re-run rules forget earlier outcomes (job.db keeps them for undo and "
        "status --customer)",
        ("run",),
        default=False,
    ),
    Option(
        "--retry-not-found",
        "send again rows that got 404 in an earlier run",
        ("run",),
        default=False,
    ),
    Option(
        "--retry-failed",
        "send again rows Fusebill refused (4xx) in an earlier run",
        ("run",),
        default=False,
    ),
    Option(
        "--allow-shared-geotab-id",
        "let one geotabId go to several fusebillIds",
        SHEET,
        default=False,
    ),
    Option(
        "--allow-relatch",
        "replace a geotabId a customer already holds (refused otherwise)",
        ("run",),
        default=False,
    ),
    Option(
        "--no-read",
        "latch without reading the customer first: saves one read per 100 rows, loses the "
        "relatch check and undo (rarely worth it)",
        ("run",),
        default=False,
    ),
    Option(
        "--wait-for-quota",
        "at the daily quota, wait for the reset and go on instead of stopping",
        CHECK_PACE,
        default=False,
    ),
    Option(
        "--unlatch-unknown",
        "undo: also unlatch customers latched with --no-read (what they held before is unknown)",
        ("undo",),
        default=False,
    ),
    Option(
        "--no-progress",
        "no progress bar (it is also off when stderr is not a terminal)",
        PACE,
        default=False,
    ),
    Option(
        "--json",
        "stdout is one JSON object (status: the job; run, plan, undo: every summary.json key "
        "and the report paths), no text summary",
        (*PACE, "status", "check"),
        default=False,
    ),
    Option(
        "--notify",
        "when the command ends, and when a quota wait starts, POST a JSON message to URL "
        f"(also {NOTIFY_VARIABLE}; https:// only, http:// for loopback)",
        PACE,
        metavar="URL",
    ),
    Option(
        "--customer",
        "status: that customer's whole story in this job, oldest first",
        ("status",),
        type=fusebill_id_type,
        metavar="ID",
    ),
)


def register(parser: argparse.ArgumentParser, command: str) -> None:
    for option in OPTIONS:
        if command in option.commands:
            option.register(parser)


@dataclass(frozen=True)
class Settings:
    """Everything one command needs; built by :func:`settings_from`, never by hand in the CLI."""

    out: Path
    kind: RunKind = RunKind.RUN
    input: Path | None = None
    dry_run: bool = False
    sheet: str | None = None
    fusebill_column: str | None = None
    geotab_column: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    rate: float = DEFAULT_RATE
    workers: int = DEFAULT_WORKERS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT
    max_requests: int | None = None
    read_batch: int = DEFAULT_READ_BATCH
    plan: str | None = None  # run --plan: a plan's run folder, or "latest"
    quota_reserve: QuotaReserve = DEFAULT_RESERVE
    keep_going: bool = False
    fresh: bool = False
    retry_not_found: bool = False
    retry_failed: bool = False
    allow_shared_geotab_id: bool = False
    allow_relatch: bool = False
    no_read: bool = False
    wait_for_quota: bool = False
    unlatch_unknown: bool = False
    json: bool = False
    #: The checked webhook URL of --notify (or the variable); never shown, never written.
    notify: SecretStr | None = field(default=None, repr=False)
    customer: int | None = None
    progress: bool = True
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def sends(self) -> bool:
        """Whether this command talks to Fusebill (and so needs the key)."""
        return not self.dry_run and self.kind is not RunKind.DRY_RUN

    def engine(self, on_quota_wait: QuotaHook | None = None) -> EngineOptions:
        """The plain values the engine runs with (twine's ``create_repository``)."""
        from batch_latch.send.options import EngineOptions

        return EngineOptions(
            base_url=self.base_url,
            api_key=self.api_key,
            rate=self.rate,
            workers=self.workers,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            read_batch=self.read_batch,
            reserve=self.quota_reserve,
            max_requests=self.max_requests,
            wait_for_quota=self.wait_for_quota,
            progress=self.progress,
            env=self.env,
            on_quota_wait=on_quota_wait,
        )

    def rules(self) -> RowRules:
        """What a run or plan does with each row."""
        from batch_latch.send.options import RowRules

        return RowRules(
            planning=self.kind is RunKind.PLAN,
            read_first=not self.no_read,
            allow_relatch=self.allow_relatch,
            keep_going=self.keep_going,
            retry_not_found=self.retry_not_found,
            retry_failed=self.retry_failed,
        )


def settings_from(args: argparse.Namespace, command: str) -> Settings:
    """Build settings from parsed arguments: every option by its field name, once."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Settings)
        if hasattr(args, f.name) and f.name not in ("out", "input")
    }
    source: Path | None = getattr(args, "input", None)
    out: Path | None = getattr(args, "out", None)
    if out is None and source is None and command == "check":
        out = Path(".")  # check writes nothing: no job folder
    elif out is None:
        assert source is not None  # undo and status take OUT as their argument
        out = job_of_report(source) or source.parent / f"{source.stem}-latch"
    dry_run = bool(values.pop("dry_run", False))
    if values.get("plan") is not None and (dry_run or values.get("no_read")):
        given = "--dry-run" if dry_run else "--no-read"
        raise ConfigError(
            f"--plan cannot go with {given}: a plan is applied by reading each customer again"
        )
    kind = run_kind(command, dry_run)
    values["progress"] = not getattr(args, "no_progress", False) and sys.stderr.isatty()
    env = environment()
    needs_key = command in ("run", "plan", "undo") and not dry_run
    base, key = DEFAULT_BASE_URL, None
    if needs_key:
        base, key = base_url(env), api_key(env)
        check_proxies(env)
    elif URL_VARIABLE in env and command != "check":
        base = base_url(env)
    if command in PACE:
        values["notify"] = _notify(values.get("notify"), env)
    return Settings(
        out=out,
        input=source,
        kind=kind,
        dry_run=dry_run,
        base_url=base,
        api_key=key,
        env=env,
        **values,
    )


def _notify(option: str | None, env: Mapping[str, str]) -> SecretStr | None:
    """The webhook URL, checked now: a bad one stops the command before anything is sent.
    ``notify`` (and the ``requests`` it imports) is loaded only when a URL is given."""
    if option is None and not env.get(NOTIFY_VARIABLE, "").strip():
        return None
    from batch_latch.notify import notify_url

    url = notify_url(option, env)
    return None if url is None else SecretStr(url)
