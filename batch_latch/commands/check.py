"""``batch-latch check [INPUT]``: is everything ready for a long job? (contract v4 "Check")

Five checks, in this order, each one line starting with its name: ``key``, ``api``,
``limits``, ``list``, ``input``. At most five requests, all reads (none when the
configuration is already wrong); nothing is written to Fusebill or to any folder. A check
that makes the API unusable (exit 2 or 3) stops the ones after it; a list that cannot be
trusted, invalid rows or a quota that does not cover the run make the exit 1 and the checks
go on, since the job is still usable.

Exit: 0 ready, 1 usable but not clean, 2 usage/configuration/input, 3 the API cannot be used.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from batch_latch.environment import KEY_VARIABLE, URL_VARIABLE, api_key, base_url
from batch_latch.errors import ConfigError
from batch_latch.fusebill.answers import Holding, Meaning, Reply, Verdict, classify_read
from batch_latch.fusebill.ratelimits import Limits, limits
from batch_latch.fusebill.redact import shown_url
from batch_latch.send.estimate import Pace, daily_bound, how_long, requests_needed, seconds_for
from batch_latch.settings import Settings
from batch_latch.vocab import ErrorKey, ExitCode, plural

#: The most customers the ``list`` check compares (and the unfiltered page's size).
SAMPLE = 3
#: An id asked alone to prove the URL and key when no customer id is known: any id proves
#: them by Fusebill's 404 ("Customer with id 1 not found").
PROBE_ID = 1
NAMES = ("key", "api", "limits", "list", "input")
NOT_CHECKED = "not checked"


@dataclass
class _Check:
    name: str
    ok: bool | None = None
    detail: str = NOT_CHECKED


@dataclass
class Report:
    """Everything ``check`` found; ``to_json`` is the contract's ``--json`` object."""

    base_url: str
    checks: dict[str, _Check] = field(default_factory=lambda: {n: _Check(n) for n in NAMES})
    exit_code: int = 0
    requests: int = 0
    limits: dict[str, Any] = field(
        default_factory=lambda: {
            "per_minute": None,
            "per_day": None,
            "left_today": None,
            "day_resets_at": None,
        }
    )
    list_trusted: bool | None = None
    input: dict[str, int] | None = None
    estimate: dict[str, Any] | None = None

    def set(self, name: str, ok: bool | None, detail: str) -> None:
        self.checks[name] = _Check(name, ok, detail)

    def worse(self, code: int) -> None:
        self.exit_code = max(self.exit_code, code)

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.exit_code == 0,
            "exit_code": self.exit_code,
            "base_url": self.base_url,
            "requests": self.requests,
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks.values()
            ],
            "limits": self.limits,
            "list": {"trusted": self.list_trusted, "detail": self.checks["list"].detail},
            "input": self.input,
            "estimate": self.estimate,
        }

    def lines(self) -> list[str]:
        """The checks that ran, in order (none after the one that stopped the check)."""
        return [f"{c.name:<7}{c.detail}" for c in self.checks.values() if c.detail != NOT_CHECKED]


class _Counted:
    """The client, counting what it sends (the check's budget is five requests)."""

    def __init__(self, settings: Settings, key: str, base: str) -> None:
        from batch_latch.fusebill.client import FusebillClient

        self.client = FusebillClient(base, key, timeout=settings.timeout, env=settings.env)
        self.sent = 0

    def customer(self, fid: int) -> Reply:
        self.sent += 1
        return self.client.customer(fid)

    def customers(self, ids: list[int]) -> Reply:
        self.sent += 1
        return self.client.customers(ids)

    def first_customers(self) -> Reply:
        self.sent += 1
        return self.client.first_customers(SAMPLE)


class _Stop(Exception):
    """A check failed so that the ones after it cannot run."""


def check(settings: Settings, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    env = settings.env
    shown = shown_url((env.get(URL_VARIABLE) or settings.base_url).strip())
    report = Report(shown)
    counted: _Counted | None = None
    try:
        key, base = _key_and_url(settings, report)
        report.base_url = base
        verdicts = _load(settings)  # a file-level problem: the CLI's one line, exit 2
        first = _first_valid(verdicts, SAMPLE) if verdicts is not None else []
        counted = _Counted(settings, key, base)
        answer, sample, reads = _api(counted, report, first)
        seen = limits(answer, datetime.now(timezone.utc))
        _limits(report, seen, settings)
        _list(counted, report, settings, sample, reads)
        if verdicts is not None:
            _input(report, settings, verdicts, seen)
    except _Stop:
        pass
    finally:
        if counted is not None:
            report.requests = counted.sent
            counted.client.close()
    if settings.json:
        print(json.dumps(report.to_json(), indent=2), file=out)
    else:
        for line in report.lines():
            print(line, file=out)
    return report.exit_code


# --- key --------------------------------------------------------------------------------------


def _key_and_url(settings: Settings, report: Report) -> tuple[str, str]:
    from batch_latch.fusebill.proxies import check_proxies

    try:
        key = api_key(settings.env).get_secret_value()
    except ConfigError as exc:
        report.set("key", False, str(exc))
        report.worse(ExitCode.USAGE)
        raise _Stop from None
    report.set("key", True, f"{KEY_VARIABLE} is set (not shown)")
    try:
        base = base_url(settings.env)
        check_proxies(settings.env)
    except ConfigError as exc:
        report.set("api", False, str(exc))
        report.worse(ExitCode.USAGE)
        raise _Stop from None
    return key, base


def _load(settings: Settings) -> Any:
    if settings.input is None:
        return None
    from batch_latch.commands.job import load_sheet

    return load_sheet(settings, sys.stderr)[1]


def _first_valid(verdicts: Any, count: int) -> list[int]:
    """The fusebillIds of the first valid rows, each once, at most ``count``."""
    ids: list[int] = []
    for status, fid in zip(
        verdicts.status.to_pylist(), verdicts.fusebill_id.to_pylist(), strict=True
    ):
        if status == "valid" and fid is not None and fid not in ids:
            ids.append(fid)
            if len(ids) == count:
                break
    return ids


# --- api --------------------------------------------------------------------------------------

#: A single read's outcome: the verdict and what the customer holds.
_Read = tuple[Verdict, Holding | None]


def _api(
    counted: _Counted, report: Report, first: list[int]
) -> tuple[Reply, list[int], dict[int, _Read]]:
    """(the answer judged, the customers the list check compares, reads made alone)."""
    base = report.base_url
    if first:
        reply = counted.customer(first[0])
        read = classify_read(reply, first[0])
        _judge_single(report, reply, read[0], f"GET /customers/{first[0]}")
        return reply, first, {first[0]: read}
    page = counted.first_customers()
    ids = _page_ids(page)
    if ids is not None:
        report.set("api", True, f"{base} answers in Fusebill's format and accepts the key")
        return page, ids, {}
    stop = _stop_line(page, None)
    if stop is not None:
        _fail_api(report, *stop)
    # The page proves nothing (a missing list is not a wrong URL): one single read does.
    report.set("list", False, _untrusted_words(_page_problem(page)))
    report.list_trusted = False
    reply = counted.customer(PROBE_ID)
    read = classify_read(reply, PROBE_ID)
    _judge_single(report, reply, read[0], f"GET /customers/{PROBE_ID}")
    return reply, [], {}


def _judge_single(report: Report, reply: Reply, verdict: Verdict, what: str) -> None:
    if verdict.kind in (Meaning.SUCCESS, Meaning.NOT_FOUND, Meaning.RATE_LIMITED):
        report.set(
            "api",
            True,
            f"{report.base_url} answers in Fusebill's format and accepts the key "
            f"({what}: {reply.status})",
        )
        return
    stop = _stop_line(reply, verdict)
    if stop is None:
        stop = (f"{report.base_url} did not answer usably: {verdict.message}", ExitCode.STOPPED)
    _fail_api(report, *stop)


def _fail_api(report: Report, line: str, code: int) -> None:
    report.set("api", False, line)
    report.worse(code)
    raise _Stop


def _stop_line(reply: Reply, verdict: Verdict | None) -> tuple[str, int] | None:
    """The one line a ``run`` gives for an answer that makes the API unusable, or None."""
    from batch_latch.fusebill.answers import host_port, outside_2xx

    if verdict is None:
        status = reply.status
        if status is not None and 400 <= status < 500 and status not in (401, 403, 407):
            return None  # a list's 4xx only makes the list untrusted
        verdict = outside_2xx(reply)
        if verdict is None:
            return None
    if reply.status is None and verdict.error_key is ErrorKey.CONNECTION:
        return (
            f"could not connect to {host_port(reply.url)} ({reply.detail}); no answer came "
            "from it, so check FUSEBILL_BASE_URL (host and port)",
            ExitCode.STOPPED,
        )
    if verdict.kind is Meaning.KEY_REJECTED:
        return (
            f"Fusebill rejected the API key (HTTP {reply.status}: {verdict.message}); "
            f"check {KEY_VARIABLE}",
            ExitCode.STOPPED,
        )
    if verdict.kind is Meaning.STOP:
        return verdict.message, ExitCode.STOPPED
    if verdict.kind is Meaning.RETRYABLE:
        return f"the API looks down ({verdict.message})", ExitCode.STOPPED
    return None


def _page_ids(reply: Reply) -> list[int] | None:
    """The ids of an unfiltered list page that is a JSON array of customer objects."""
    if reply.error is not None or reply.status is None or not 200 <= reply.status < 300:
        return None
    body = reply.body
    if not isinstance(body, list):
        return None
    ids: list[int] = []
    for item in body:
        if not isinstance(item, dict):
            return None
        fid = item.get("id")
        if isinstance(fid, bool) or not isinstance(fid, int):
            return None
        ids.append(fid)
    return ids[:SAMPLE]


def _page_problem(reply: Reply) -> str:
    from batch_latch.fusebill.answers import describe, error_text

    what = error_text(reply.body)[0] if reply.status and reply.status >= 400 else ""
    return f"the unfiltered customer list answered {reply.status} with {what or describe(reply)}"


# --- limits -----------------------------------------------------------------------------------


def _limits(report: Report, seen: Limits, settings: Settings) -> None:
    resets = seen.reset_day_at
    report.limits = {
        "per_minute": seen.limit_minute,
        "per_day": seen.limit_day,
        "left_today": seen.remaining_day,
        "day_resets_at": resets.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if resets
        else None,
    }
    parts = [
        f"{seen.limit_minute:,} a minute" if seen.limit_minute is not None else "",
        f"{seen.limit_day:,} a day" if seen.limit_day is not None else "",
        f"{seen.remaining_day:,} left today" if seen.remaining_day is not None else "",
        f"the day resets at {resets.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if resets else "",
    ]
    shown = [p for p in parts if p]
    if not shown:
        report.set("limits", True, f"the API shows none: --rate {settings.rate:g} alone paces")
        return
    report.set("limits", True, "; ".join(shown))


# --- list -------------------------------------------------------------------------------------


def _untrusted_words(what: str) -> str:
    return f"cannot be trusted here: {what}; reads will cost a request each"


def _list(
    counted: _Counted,
    report: Report,
    settings: Settings,
    ids: list[int],
    reads: dict[int, _Read],
) -> None:
    from batch_latch.fusebill.listing import classify_list

    if report.list_trusted is False:
        report.worse(ExitCode.ROW_PROBLEMS)
        return
    if settings.read_batch <= 1:
        report.set("list", None, "not checked: --read-batch 1 reads every customer alone")
        return
    if not ids:
        report.set("list", None, "not checked: the account shows no customer to compare")
        return
    answer = classify_list(counted.customers(ids), ids)
    problem: str | None = None
    if answer.untrusted is not None:
        problem = answer.untrusted
    elif not answer.answered:
        problem = f"the customer list did not answer usably ({answer.verdict.message})"
    elif answer.no_geotab_anywhere:
        problem = "the customer list shows no geotabId"
    else:
        for fid in ids:
            alone = reads.get(fid)
            if alone is None:
                reply = counted.customer(fid)
                alone = classify_read(reply, fid)
            problem = _disagreement(fid, answer.holdings.get(fid), alone)
            if problem:
                break
    if problem:
        report.set("list", False, _untrusted_words(problem))
        report.list_trusted = False
        report.worse(ExitCode.ROW_PROBLEMS)
        return
    report.list_trusted = True
    report.set(
        "list",
        True,
        f"trusted: reads cost one request per {settings.read_batch:,} rows "
        f"({plural(len(ids), 'customer')} read through the id filter and alone agree)",
    )


def _disagreement(fid: int, listed: Holding | None, alone: _Read) -> str | None:
    verdict, holding = alone
    if verdict.kind is Meaning.NOT_FOUND:
        return None if listed is None else f"customer {fid} is in the list but not found alone"
    if verdict.kind is not Meaning.SUCCESS or holding is None:
        return f"customer {fid} could not be read alone ({verdict.message})"
    if not holding.known:
        return f"customer {fid} read alone shows no geotabId"
    if listed is None:
        return f"customer {fid} is missing from the filtered list but is found alone"
    if listed.geotab_id != holding.geotab_id:
        return (
            f"customer {fid} holds {holding.geotab_id!r} read alone but "
            f"{listed.geotab_id!r} in the list"
        )
    return None


# --- input ------------------------------------------------------------------------------------


def _input(report: Report, settings: Settings, verdicts: Any, seen: Limits) -> None:
    counts = verdicts.counts()
    rows, valid = len(verdicts), counts.get("valid", 0)
    invalid, duplicate = counts.get("invalid", 0), counts.get("duplicate", 0)
    report.input = {"rows": rows, "valid": valid, "invalid": invalid, "duplicate": duplicate}
    batch = settings.read_batch if report.list_trusted is not False else 1
    plan = requests_needed(valid, reads=True, writes=False, read_batch=batch)
    run = requests_needed(valid, reads=True, writes=True, read_batch=batch)
    now = datetime.now(timezone.utc)
    resets_in = (seen.reset_day_at - now).total_seconds() if seen.reset_day_at else None
    pace = Pace(
        settings.rate,
        seen.limit_minute,
        seen.limit_day,
        settings.quota_reserve.of(seen.limit_day),
        seen.remaining_day,
        None if resets_in is None else max(0.0, resets_in),
    )
    report.estimate = {
        "plan_requests": plan,
        "run_requests": run,
        "run_days": round(seconds_for(run, pace) / 86400.0, 3),
    }
    words = (
        f"{plural(rows, 'row')}: {valid:,} valid, {invalid:,} invalid, {duplicate:,} duplicate; "
        f"a plan sends {plural(plan, 'request')} ({how_long(plan, pace)}), a run "
        f"{plural(run, 'request')} ({how_long(run, pace)})"
    )
    covers = _covers(run, pace, seen)
    if covers is not None:
        words += f"; {covers[1]}"
    ok = invalid == 0 and (covers is None or covers[0])
    report.set("input", ok, words)
    if not ok:
        report.worse(ExitCode.ROW_PROBLEMS)


def _covers(run: int, pace: Pace, seen: Limits) -> tuple[bool, str] | None:
    if seen.remaining_day is None:
        return None
    usable = max(0, seen.remaining_day - pace.reserve)
    reserve = f" after the reserve of {plural(pace.reserve, 'request')}" if pace.reserve else ""
    if run <= usable and not daily_bound(run, pace):
        return True, f"what is left of today ({usable:,}{reserve}) covers the run"
    return False, f"what is left of today ({usable:,}{reserve}) does not cover the run"
