"""The words the tool speaks, each defined once: statuses, changes, run and command kinds, stop
reasons, error keys, exit codes.

``str`` enums with ``__str__`` (pip-audit's ``OutputFormatChoice``), so a member goes into
a CSV cell, JSON or an f-string as its value (``f"{Status.SUCCESS}"`` is ``"success"``) on
every Python version. The tables of words below are keyed by member; a test fails when a
member has no entry.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NewType, TypeAlias


class Word(str, enum.Enum):
    """A member of one of the tool's vocabularies: it reads as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(Word):
    """Column ``status`` of every report."""

    VALID = "valid"
    SUCCESS = "success"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    PENDING = "pending"


#: Each status in a summary's table of counts (stdout, the Summary sheet).
STATUS_LABELS: dict[Status, str] = {
    Status.VALID: "valid (would be sent)",
    Status.SUCCESS: "success",
    Status.NOT_FOUND: "not found (404)",
    Status.FAILED: "failed",
    Status.INVALID: "invalid (not sent)",
    Status.DUPLICATE: "duplicate (not sent)",
    Status.PENDING: "pending (not finished)",
}

#: Statuses in the order reports and summaries list them.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
#: Rows that go into ``failed.csv``: to fix, refused, or not sent yet.
FAILED_STATUSES: tuple[str, ...] = (
    Status.INVALID.value,
    Status.NOT_FOUND.value,
    Status.FAILED.value,
    Status.PENDING.value,
)
#: Outcomes the ledger keeps as a row's; ``pending`` rows simply have none yet.
RECORDED: tuple[str, ...] = (Status.SUCCESS.value, Status.NOT_FOUND.value, Status.FAILED.value)


class Change(Word):
    """Column ``change``: what the row did (or would do) to the customer."""

    NONE = ""  # the customer was not reached
    NEW = "new"  # held no geotabId
    UNCHANGED = "unchanged"  # already held this one: nothing written
    RELATCH = "relatch"  # held another one (named in previous_geotabId)
    UNKNOWN = "unknown"  # written without knowing what it held (--no-read, or no geotabId key)
    UNDO = "undo"  # an undo put back what the customer held before


CHANGES: tuple[str, ...] = tuple(c.value for c in Change if c is not Change.NONE)


class RunKind(Word):
    """What a command did; names its run folder ``OUT/runs/<UTC time>-<kind>/``."""

    RUN = "run"
    DRY_RUN = "dry-run"
    PLAN = "plan"
    UNDO = "undo"  # also undo --dry-run (summary.json says dry_run)


class CommandKind(Word):
    """A command as ``job.db`` records it (``commands.kind``): its run kind, and for undo
    whether it was a dry run (which sends nothing and owns no record)."""

    RUN = "run"
    DRY_RUN = "dry_run"
    PLAN = "plan"
    UNDO = "undo"
    UNDO_DRY_RUN = "undo_dry_run"


@dataclass(frozen=True)
class CommandWords:
    run_kind: RunKind  # its run folder's and summary.json's kind; the customer story's word
    shown: str  # as status's table of runs names it
    dry_run: bool = False  # undo --dry-run (a dry-run's kind says it already)


#: The one mapping between a command's run kind, the ledger's word and status's word.
COMMAND_KINDS: dict[CommandKind, CommandWords] = {
    CommandKind.RUN: CommandWords(RunKind.RUN, "run"),
    CommandKind.DRY_RUN: CommandWords(RunKind.DRY_RUN, "dry-run"),
    CommandKind.PLAN: CommandWords(RunKind.PLAN, "plan"),
    CommandKind.UNDO: CommandWords(RunKind.UNDO, "undo"),
    CommandKind.UNDO_DRY_RUN: CommandWords(RunKind.UNDO, "undo --dry-run", dry_run=True),
}

#: The run kind of each command that makes one (``check`` reads as a plan does); any other
#: command is a run (``--dry-run``: a dry run).
COMMAND_RUN_KINDS: dict[str, RunKind] = {
    "run": RunKind.RUN,
    "plan": RunKind.PLAN,
    "check": RunKind.PLAN,
    "undo": RunKind.UNDO,
}


def run_kind(command: str, dry_run: bool = False) -> RunKind:
    """The run kind of CLI command ``command`` (``run --dry-run``: ``dry-run``)."""
    kind = COMMAND_RUN_KINDS.get(command, RunKind.RUN)
    return RunKind.DRY_RUN if kind is RunKind.RUN and dry_run else kind


def command_kind(kind: RunKind, dry_run: bool = False) -> CommandKind:
    """The ledger's word for a command of run kind ``kind`` (only undo's dry run has its own)."""
    wanted = dry_run and kind is RunKind.UNDO
    return next(c for c, w in COMMAND_KINDS.items() if w.run_kind is kind and w.dry_run is wanted)


def command_words(kind: str) -> CommandWords | None:
    """The words of a ``commands.kind`` read back from ``job.db``; None for one this
    version does not know."""
    try:
        return COMMAND_KINDS[CommandKind(kind)]
    except ValueError:
        return None


class StopReason(Word):
    """Why a run stopped before every row was settled (``summary.json`` ``stop_reason``)."""

    KEY_REJECTED = "key_rejected"
    DAILY_QUOTA = "daily_quota"
    API_DOWN = "api_down"
    MAX_REQUESTS = "max_requests"
    INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT)
    TERMINATED = "terminated"  # SIGTERM (a service manager, cron, CI, kill)
    HANGUP = "hangup"  # SIGHUP (the terminal or SSH session went away)
    # Was "checkpoint_error" (v3's checkpoint.csv); the contract names neither word, and no
    # summary.json should hold it: a ledger write failure raises (exit 2 before any request,
    # else 3; one line, no reports). An older summary that does is read as this one.
    LEDGER_ERROR = "ledger_error"  # job.db could not be written (a full disk...)
    WRONG_URL = "wrong_url"  # a 404/405 not in Fusebill's error format
    REDIRECT = "redirect"  # a 3xx: never followed
    TLS = "tls"  # certificate verification failed
    PROXY = "proxy"  # the proxy refused (407) or could not be used
    LONG_PAUSE = "long_pause"  # the server asked for a pause over 15 minutes
    RATE_LIMITED = "rate_limited"  # ten minutes of 429s with no request getting through
    SYSTEMATIC_REFUSAL = "systematic_refusal"  # 25 rows in a row refused by Fusebill

    @classmethod
    def _missing_(cls, value: object) -> StopReason | None:
        return cls.LEDGER_ERROR if value == "checkpoint_error" else None


#: The ``message`` of a row a stopped run did not settle, by stop reason.
PENDING_MESSAGES: dict[StopReason, str] = {
    StopReason.KEY_REJECTED: "not sent: Fusebill rejected the API key",
    StopReason.DAILY_QUOTA: "not sent: the daily API quota is spent",
    StopReason.API_DOWN: "not finished: the API looked down (retryable failures in a row)",
    StopReason.MAX_REQUESTS: "not sent: --max-requests was reached",
    StopReason.INTERRUPTED: "not sent: the run was interrupted (Ctrl-C)",
    StopReason.TERMINATED: "not sent: the run was stopped by SIGTERM",
    StopReason.HANGUP: "not sent: the run was stopped by SIGHUP (the terminal went away)",
    StopReason.LEDGER_ERROR: "not sent: the job's job.db could not be written",
    StopReason.WRONG_URL: "not sent: the API URL looks wrong (check FUSEBILL_BASE_URL)",
    StopReason.REDIRECT: "not sent: the API URL redirects (check FUSEBILL_BASE_URL)",
    StopReason.TLS: "not sent: the server's TLS certificate could not be verified",
    StopReason.PROXY: "not sent: the proxy refused the connection",
    StopReason.LONG_PAUSE: "not sent: the server asked for a pause of over 15 minutes",
    StopReason.RATE_LIMITED: "not sent: ten minutes of rate-limit answers (429)",
    StopReason.SYSTEMATIC_REFUSAL: "not sent: 25 rows in a row were refused by Fusebill",
}


class ExitCode(enum.IntEnum):
    OK = 0  # every row success or duplicate (dry run and plan: valid or duplicate)
    ROW_PROBLEMS = 1  # finished; some rows invalid, not_found or failed
    USAGE = 2  # usage, configuration or input-file error; nothing sent
    STOPPED = 3  # stopped early; some rows pending
    INTERNAL = 70  # EX_SOFTWARE: a bug of ours, not a problem with the input or the API
    HANGUP = 129  # SIGHUP: 128 + 1, as a shell reports a process the signal killed
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM: 128 + 15


#: What a person does next after each stop, in a few words (a notification, a status line).
STOP_ADVICE: dict[StopReason, str] = {
    StopReason.KEY_REJECTED: "check FUSEBILL_API_KEY, then run the same command again",
    StopReason.DAILY_QUOTA: "run the same command again after the quota resets (or "
    "--wait-for-quota)",
    StopReason.API_DOWN: "run the same command again later",
    StopReason.MAX_REQUESTS: "run the same command again to continue",
    StopReason.INTERRUPTED: "resume with the same command",
    StopReason.TERMINATED: "resume with the same command",
    StopReason.HANGUP: "resume with the same command",
    StopReason.LEDGER_ERROR: "check the job folder (free space?), then run the same command again",
    StopReason.WRONG_URL: "check FUSEBILL_BASE_URL, then run the same command again",
    StopReason.REDIRECT: "set FUSEBILL_BASE_URL to the URL it redirects to, then run again",
    StopReason.TLS: "check REQUESTS_CA_BUNDLE (see the command's stderr), then run again",
    StopReason.PROXY: "check HTTPS_PROXY and NO_PROXY (see the command's stderr), then run again",
    StopReason.LONG_PAUSE: "run the same command again later (the command's stderr says when)",
    StopReason.RATE_LIMITED: "run the same command again later, perhaps with a lower --rate",
    StopReason.SYSTEMATIC_REFUSAL: "check the sheet, FUSEBILL_API_KEY, FUSEBILL_BASE_URL (or "
    "--keep-going)",
}

#: The stops a signal asked for, and the exit code each ends with.
SIGNAL_STOPS: dict[StopReason, ExitCode] = {
    StopReason.INTERRUPTED: ExitCode.INTERRUPTED,
    StopReason.TERMINATED: ExitCode.TERMINATED,
    StopReason.HANGUP: ExitCode.HANGUP,
}


#: The signal behind each signal stop, as a person names it.
SIGNAL_NAMES: dict[StopReason, str] = {
    StopReason.INTERRUPTED: "Ctrl-C",
    StopReason.TERMINATED: "SIGTERM",
    StopReason.HANGUP: "SIGHUP",
}


class ErrorKey(Word):
    """Column ``error_key``: a short code to filter on. A ``pending`` row's key is its stop
    reason (:class:`StopReason`); a Fusebill refusal or status that never cleared is
    ``http_<status>`` (:func:`http_key`); the rest are these."""

    NONE = ""
    INVALID_FUSEBILL_ID = "invalid_fusebill_id"
    INVALID_GEOTAB_ID = "invalid_geotab_id"
    INVALID_IDS = "invalid_ids"
    EXCEL_CELL = "excel_cell"
    DUPLICATE_ROW = "duplicate_row"
    CONFLICTING_GEOTAB_IDS = "conflicting_geotab_ids"
    SHARED_GEOTAB_ID = "shared_geotab_id"
    NOT_FOUND = "not_found"
    RELATCH_REFUSED = "relatch_refused"
    STALE_PLAN = "stale_plan"
    UNREADABLE = "unreadable"
    UNREADABLE_ANSWER = "unreadable_answer"
    UNCONFIRMED = "unconfirmed"
    GEOTAB_ID_MISMATCH = "geotab_id_mismatch"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    LIST_UNTRUSTED = "list_untrusted"
    LATCHED_EARLIER = "latched_earlier"
    CHANGED_SINCE = "changed_since"
    UNKNOWN_PREVIOUS = "unknown_previous"
    CANNOT_CHECK = "cannot_check"
    INTERNAL_ERROR = "internal_error"


#: What each error key says of its row (docs/reference.md lists them from here).
ERROR_KEY_MEANINGS: dict[ErrorKey, str] = {
    ErrorKey.NONE: "nothing to report",
    ErrorKey.INVALID_FUSEBILL_ID: "failed validation: the fusebillId (the message says why)",
    ErrorKey.INVALID_GEOTAB_ID: "failed validation: the geotabId (the message says why)",
    ErrorKey.INVALID_IDS: "failed validation: both ids (the message says why)",
    ErrorKey.EXCEL_CELL: "an id cell is an Excel error, a date or time, a boolean, a formula "
    "with no saved value, a number Excel shows otherwise than it stores, or a format out of "
    "reach",
    ErrorKey.DUPLICATE_ROW: "repeats an earlier row's pair",
    ErrorKey.CONFLICTING_GEOTAB_IDS: "one fusebillId with different geotabIds",
    ErrorKey.SHARED_GEOTAB_ID: "one geotabId on several fusebillIds (without "
    "`--allow-shared-geotab-id`)",
    ErrorKey.NOT_FOUND: "Fusebill answered 404 in its error format",
    ErrorKey.RELATCH_REFUSED: "the customer holds another geotabId (use a plan, or "
    "`--allow-relatch`)",
    ErrorKey.STALE_PLAN: "`run --plan`: the customer changed since the plan (the message says how)",
    ErrorKey.UNREADABLE: "the customer could not be read (HTML, another shape, 5xx, "
    "timeout…): never written blind",
    ErrorKey.UNREADABLE_ANSWER: "an answer could not be read or judged (a malformed body, a "
    "protocol error), still so after `--max-attempts`",
    ErrorKey.UNCONFIRMED: "a 2xx that proved nothing, and the read-back did not show the "
    "geotabId sent",
    ErrorKey.GEOTAB_ID_MISMATCH: "the answer or the read-back shows the customer holding "
    "another geotabId than the one sent",
    ErrorKey.TIMEOUT: "no answer in time, still so after `--max-attempts`",
    ErrorKey.CONNECTION: "the connection failed, still so after `--max-attempts`",
    ErrorKey.LIST_UNTRUSTED: "a customer list answer that cannot be trusted: its customers "
    "are read one by one instead",
    ErrorKey.LATCHED_EARLIER: "settled by an earlier run (`success`)",
    ErrorKey.CHANGED_SINCE: "undo left the customer alone: it holds something else now",
    ErrorKey.UNKNOWN_PREVIOUS: "undo left the customer alone: it was latched with "
    "`--no-read` (see `--unlatch-unknown`)",
    ErrorKey.CANNOT_CHECK: "undo left the customer alone: the API shows no geotabIds",
    ErrorKey.INTERNAL_ERROR: "a bug failed this row (its traceback is in `row-errors.txt`)",
}

#: ``http_<status>``: Fusebill refused the row (another 4xx), or a retryable status never
#: cleared. Made by :func:`http_key`, recognised by :func:`is_http_key`.
HttpKey = NewType("HttpKey", str)
HTTP_KEY_MEANING = "Fusebill refused it (another 4xx), or a retryable status that never cleared"
_HTTP_KEY = re.compile(r"http_[1-9][0-9][0-9]")

#: Every ``error_key`` a row or a verdict can carry.
RowKey: TypeAlias = ErrorKey | StopReason | HttpKey


def http_key(status: int) -> HttpKey:
    """The error key of an answer with HTTP status ``status``: ``http_422``."""
    return HttpKey(f"http_{status}")


def is_http_key(key: str) -> bool:
    return _HTTP_KEY.fullmatch(key) is not None


def is_error_key(key: str) -> bool:
    """Whether ``key`` is a listed error key: a member above, a stop reason or ``http_NNN``."""
    return key in _LISTED or is_http_key(key)


_LISTED = frozenset([*(k.value for k in ErrorKey), *(r.value for r in StopReason)])


def exit_code_for(
    counts: Mapping[Status, int], *, stop_reason: StopReason | None = None
) -> ExitCode:
    if stop_reason in SIGNAL_STOPS:
        return SIGNAL_STOPS[stop_reason]
    if counts.get(Status.PENDING):
        return ExitCode.STOPPED
    if any(counts.get(s) for s in (Status.INVALID, Status.NOT_FOUND, Status.FAILED)):
        return ExitCode.ROW_PROBLEMS
    return ExitCode.OK


#: The report columns the tool owns, in order; the input's other columns follow them.
TOOL_COLUMNS: tuple[str, ...] = (
    "row",
    "fusebillId",
    "geotabId",
    "status",
    "http_status",
    "attempts",
    "message",
    "error_key",
    "change",
    "previous_geotabId",
    "finished_at",
)
#: The columns every report starts with (the contract's fixed seven): a fed-back report.
REPORT_HEAD: tuple[str, ...] = TOOL_COLUMNS[:7]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``1,234 rows``: every count the tool prints, with thousands separators."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
