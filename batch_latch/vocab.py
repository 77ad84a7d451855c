"""The words the tool speaks, each defined once: statuses, changes, stop reasons, exit codes.

``str`` enums with ``__str__`` (pip-audit's ``OutputFormatChoice``), so a member goes into
a CSV cell, JSON or an f-string as its value (``f"{Status.SUCCESS}"`` is ``"success"``) on
every Python version. The tables of words below are keyed by member; a test fails when a
member has no entry.
"""

from __future__ import annotations

import enum


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


class StopReason(Word):
    """Why a run stopped before every row was settled (``summary.json`` ``stop_reason``)."""

    KEY_REJECTED = "key_rejected"
    DAILY_QUOTA = "daily_quota"
    API_DOWN = "api_down"
    MAX_REQUESTS = "max_requests"
    INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT)
    TERMINATED = "terminated"  # SIGTERM (a service manager, cron, CI, kill)
    HANGUP = "hangup"  # SIGHUP (the terminal or SSH session went away)
    CHECKPOINT_ERROR = "checkpoint_error"
    WRONG_URL = "wrong_url"  # a 404/405 not in Fusebill's error format
    REDIRECT = "redirect"  # a 3xx: never followed
    TLS = "tls"  # certificate verification failed
    PROXY = "proxy"  # the proxy refused (407) or could not be used
    LONG_PAUSE = "long_pause"  # the server asked for a pause over 15 minutes
    RATE_LIMITED = "rate_limited"  # ten minutes of 429s with no request getting through
    SYSTEMATIC_REFUSAL = "systematic_refusal"  # 25 rows in a row refused by Fusebill


#: The ``message`` of a row a stopped run did not settle, by stop reason.
PENDING_MESSAGES: dict[StopReason, str] = {
    StopReason.KEY_REJECTED: "not sent: Fusebill rejected the API key",
    StopReason.DAILY_QUOTA: "not sent: the daily API quota is spent",
    StopReason.API_DOWN: "not finished: the API looked down (retryable failures in a row)",
    StopReason.MAX_REQUESTS: "not sent: --max-requests was reached",
    StopReason.INTERRUPTED: "not sent: the run was interrupted (Ctrl-C)",
    StopReason.TERMINATED: "not sent: the run was stopped by SIGTERM",
    StopReason.HANGUP: "not sent: the run was stopped by SIGHUP (the terminal went away)",
    StopReason.CHECKPOINT_ERROR: "not sent: the job's job.db could not be written",
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
    StopReason.CHECKPOINT_ERROR: "check the job folder (free space?), then run the same "
    "command again",
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


def exit_code_for(counts: dict[str, int], *, stop_reason: StopReason | None = None) -> ExitCode:
    if stop_reason in SIGNAL_STOPS:
        return SIGNAL_STOPS[stop_reason]
    if counts.get(Status.PENDING.value):
        return ExitCode.STOPPED
    if any(counts.get(s.value) for s in (Status.INVALID, Status.NOT_FOUND, Status.FAILED)):
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
