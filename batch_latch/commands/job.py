"""One command on a job, end to end: load, validate, send (or plan, or undo), report, and
keep its history in the job folder."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc

from batch_latch import __version__, tracebacks
from batch_latch.clock import iso, now_iso, utc_now
from batch_latch.environment import redactor
from batch_latch.errors import (
    BatchLatchError,
    ConfigError,
    InternalError,
    JobFolderError,
    OutputError,
    why,
)
from batch_latch.jobfolder import history, plans
from batch_latch.jobfolder.history import ReportPaths
from batch_latch.jobfolder.job import open_job
from batch_latch.jobfolder.ledger import Checking, Ledger, LedgerWriteError
from batch_latch.jobfolder.ledger import check as ledger_check
from batch_latch.outcome import LiveOutcome, dry_run_columns
from batch_latch.reports import writer as report
from batch_latch.reports.summary_text import print_json, print_summary
from batch_latch.reports.writer import Summary
from batch_latch.send.pool import StopSignals
from batch_latch.settings import Settings
from batch_latch.sheet import loader, validate
from batch_latch.tracebacks import ROW_ERRORS_FILE
from batch_latch.vocab import ExitCode, RunKind, Status, command_kind, exit_code_for

if TYPE_CHECKING:
    from batch_latch.commands.announcer import Announcer
    from batch_latch.send.attempt_loop import QuotaHook


@dataclass(frozen=True)
class JobResult:
    exit_code: ExitCode
    summary: Summary
    paths: ReportPaths


@dataclass
class _Span:
    """One command on its job: the ledger, its line in ``commands``, its run folder."""

    ledger: Ledger | None = None
    command: int = 0
    folder: Path | None = None
    tell: Announcer | None = None


def run(
    settings: Settings, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> JobResult:
    """Run one command under the job's lock; reports go to its run folder and to OUT/.

    The job's ledger and the input are read and checked before the job folder is written,
    so a bad file or a wrong folder leaves nothing behind."""
    err = stderr or sys.stderr
    out = stdout or sys.stdout
    started = utc_now()
    with ledger_check(settings.out) as checking:
        if settings.kind is RunKind.UNDO:
            return _undo(settings, checking, started, out, err)
        checking.wait()
    assert settings.input is not None
    sheet, verdicts = load_sheet(settings, err)
    digest = _sha256(settings.input)
    with _command(settings, started, out, err, {"rows": len(verdicts)}) as span:
        plan = _plan_for(settings, digest)
        if plan is None and settings.kind is RunKind.RUN:
            _hint_reviewed_plan(settings, digest, err)
        _begin(settings, span, started, digest, plan, verdicts)
        done = _send(settings, sheet, verdicts, err, plan, span)
        return _report(settings, done, sheet.extras, started, out, err, digest, span, plan)


def _undo(
    settings: Settings, checking: Checking, started: datetime, out: TextIO, err: TextIO
) -> JobResult:
    """``undo``: its targets are read while the ledger's full check goes on (the check's
    verdict first), then the command is recorded and run."""
    from batch_latch.commands import undo

    undo.check_job(settings.out)
    try:
        with _command(settings, started, out, err, {}) as span:
            assert span.ledger is not None
            ledger = span.ledger
            targets = checking.read_meanwhile(lambda: undo.prepare(settings, ledger))
            _begin(settings, span, started, "")
            done = undo.undo(settings, ledger, targets, stderr=err, on_quota_wait=_hook(span))
            return _report(settings, done, done.extras, started, out, err, span=span)
    except BatchLatchError:
        checking.wait()  # a damaged ledger's line before any other (a busy job's)
        raise


def _begin(
    settings: Settings,
    span: _Span,
    started: datetime,
    sha: str,
    plan: plans.Plan | None = None,
    verdicts: validate.Verdicts | None = None,
) -> None:
    """The command's line in the ledger and its run folder, before anything is sent (so a
    failure to record them is exit 2)."""
    try:
        _begin_recorded(settings, span, started, sha, plan, verdicts)
    except LedgerWriteError as exc:
        raise exc.nothing_sent() from None


def _begin_recorded(
    settings: Settings,
    span: _Span,
    started: datetime,
    sha: str,
    plan: plans.Plan | None,
    verdicts: validate.Verdicts | None,
) -> None:
    assert span.ledger is not None
    span.folder = history.new_run_folder(settings.out, settings.kind, started)
    invalid = None if verdicts is None else verdicts.counts().get("invalid", 0)
    span.command = span.ledger.begin(
        span.folder.name,
        command_kind(settings.kind, settings.dry_run),
        started_at=iso(started),
        user=history.user(),
        host=history.host(),
        input=str(settings.input or settings.out),
        input_sha256=sha,
        base_url=settings.base_url,
        plan_run_id=plan.folder.name if plan else None,
        fresh=settings.fresh and settings.sends,
        rows=None if verdicts is None else len(verdicts),
        invalid=invalid,
    )
    if verdicts is not None and settings.kind in (RunKind.RUN, RunKind.PLAN):
        valid = pc.equal(verdicts.status, "valid")
        rows = pc.filter(verdicts.rows, valid).to_numpy()
        fids = pc.filter(verdicts.fusebill_id, valid).to_numpy()
        span.ledger.remember_input(sha, rows, fids, pc.filter(verdicts.geotab, valid))


@contextlib.contextmanager
def _command(
    settings: Settings, started: datetime, out: TextIO, err: TextIO, known: dict[str, Any]
) -> Iterator[_Span]:
    """One command's span on its job: the lock, the ledger, the stop signals, the
    quota-wait message. An error that stops it once requests went out (exit 3: a full
    disk) still gets its notification and, with ``--json``, its JSON object; then it goes
    on to the CLI. The ledger records how it ended, whatever the way."""
    facts = {
        "input": str(settings.input) if settings.input else str(settings.out),
        "dry_run": not settings.sends,
        "kind": settings.kind.value,
        "started_at": iso(started),
        "user": history.user(),
        "host": history.host(),
        "version": __version__,
        **known,
    }
    with history.lock(settings.out), StopSignals.installed():
        span = _Span()
        bound = settings.base_url if settings.sends else None
        span.ledger = open_job(settings.out, bound, err)
        if settings.notify is not None:
            from batch_latch.commands.announcer import Announcer

            span.tell = Announcer.open(settings, err, facts)
        try:
            yield span
        except BatchLatchError as exc:
            _ended_badly(span, exc.exit_code)
            if exc.exit_code == ExitCode.STOPPED:
                line = redactor(settings.env, _key(settings))(str(exc))
                if settings.json:
                    data = {**facts, "exit_code": int(ExitCode.STOPPED), "error": line}
                    print_json(data, {}, out)
                if span.tell is not None:
                    span.tell.stopped(line)
            raise
        except Exception as exc:
            _ended_badly(span, ExitCode.INTERNAL)
            redact = redactor(settings.env, _key(settings))
            kept = tracebacks.keep(exc, redact, span.folder)
            raise InternalError(tracebacks.line(exc, redact, kept), kept) from exc
        finally:
            span.ledger.close()


def _ended_badly(span: _Span, code: int) -> None:
    """A command that ended on an error: a refusal before anything was done leaves no
    trace (its run folder and line go); else its end is recorded with the exit code."""
    if span.ledger is None or not span.command:
        return
    with contextlib.suppress(BatchLatchError):
        if code == ExitCode.USAGE:
            span.ledger.forget(span.command)
            if span.folder is not None:
                with contextlib.suppress(OSError):
                    span.folder.rmdir()
            return
        span.ledger.end(span.command, ended_at=now_iso(), exit_code=int(code))


def _key(settings: Settings) -> str:
    return settings.api_key.get_secret_value() if settings.api_key else ""


def _sha256(path: Path) -> str:
    """The input's SHA-256 as loaded; "" when it cannot be read again (deleted since)."""
    try:
        return history.sha256(path)
    except OSError:
        return ""


def load_sheet(settings: Settings, err: TextIO) -> tuple[loader.Sheet, validate.Verdicts]:
    """The input loaded and validated (``run``, ``plan`` and ``check`` alike)."""
    assert settings.input is not None
    sheet = loader.load(
        settings.input,
        sheet=settings.sheet,
        fusebill_column=settings.fusebill_column,
        geotab_column=settings.geotab_column,
        encoding=settings.encoding,
        delimiter=settings.delimiter,
    )
    if sheet.header_row != 1:
        print(f"Header found on row {sheet.header_row} of {settings.input.name}.", file=err)
    return sheet, validate.validate(sheet, allow_shared_geotab_id=settings.allow_shared_geotab_id)


def _plan_for(settings: Settings, digest: str) -> plans.Plan | None:
    """``run --plan``: the reviewed plan, refused before anything is sent when it is not a
    plan of this job, of this very sheet, against this API."""
    if settings.plan is None:
        return None
    folder = plans.resolve(settings.out, settings.plan)
    try:
        made = Summary.load(folder / "summary.json")
    except (OSError, ValueError):
        raise ConfigError(f"--plan {folder.name}: its summary.json is missing or damaged") from None
    if made.kind != RunKind.PLAN.value:
        raise ConfigError(f"--plan {folder.name}: that run folder is a {made.kind}, not a plan")
    if made.input_sha256 != digest:
        raise ConfigError(
            f"--plan {folder.name}: the sheet changed since the plan (its SHA-256 differs); "
            "make a new plan of it and review that"
        )
    if made.base_url and made.base_url != settings.base_url:
        raise ConfigError(
            f"--plan {folder.name}: the plan was made against {made.base_url}, not "
            f"{settings.base_url} (check FUSEBILL_BASE_URL)"
        )
    plan = plans.load(folder)
    plans.refuse_unfinished(plan, made.stop_reason, made.exit_code)
    return plan


def _hint_reviewed_plan(settings: Settings, digest: str, err: TextIO) -> None:
    """A run without ``--plan`` on a job whose newest plan is of this very sheet (its
    SHA-256): one stderr line naming ``--plan latest``; the run goes on by its own rules."""
    folder = plans.newest(settings.out)
    if folder is None:
        return
    try:
        made = Summary.load(folder / "summary.json")
    except (OSError, ValueError):
        return  # run --plan would say what is wrong with it; no hint to give
    if made.kind != RunKind.PLAN.value or made.input_sha256 != digest:
        return
    print(
        f"Note: a reviewed plan of this sheet exists ({folder.name}); `--plan latest` writes "
        "exactly what it showed, this run applies its own rules (a relatch is refused "
        "unless --allow-relatch).",
        file=err,
    )


def _send(
    settings: Settings,
    sheet: loader.Sheet,
    verdicts: validate.Verdicts,
    err: TextIO,
    plan: plans.Plan | None,
    span: _Span,
) -> LiveOutcome:
    if settings.kind is RunKind.DRY_RUN:
        return LiveOutcome(dry_run_columns(verdicts))
    from batch_latch.send import runner  # the live side pulls in requests and tqdm

    assert span.ledger is not None
    options = settings.engine(on_quota_wait=_hook(span))
    return runner.latch(
        options, settings.rules(), verdicts, ledger=span.ledger, stderr=err, plan=plan
    )


def _hook(span: _Span) -> QuotaHook | None:
    """What a quota wait tells: the --notify message, when there is one."""
    return span.tell.waiting if span.tell is not None else None


def _report(
    settings: Settings,
    done: LiveOutcome,
    extras: Mapping[str, pa.Array],
    started: datetime,
    out: TextIO,
    err: TextIO,
    digest: str | None = None,
    span: _Span | None = None,
    plan: plans.Plan | None = None,
) -> JobResult:
    summary = _summary(settings, done, started, digest, plan)
    code, counts = ExitCode(summary.exit_code), summary.counts
    assert span is not None and span.ledger is not None and span.folder is not None
    span.ledger.end(
        span.command,
        ended_at=summary.finished_at,
        exit_code=summary.exit_code,
        requests=summary.requests,
        rows=summary.rows,
        invalid=counts.get(Status.INVALID, 0),
        stop_reason=summary.stop_reason,
        by_day=summary.requests_by_day,
    )
    tell = span.tell
    folder, paths, kept, reports = _write(settings, done, extras, summary, span.folder, err)
    for line in kept:
        print(f"Note: {line}; this command's copy is in {folder}/.", file=err)
    if settings.json:
        print_json(asdict(summary), reports, out)
    else:
        print_summary(summary, paths, settings.out, kept, out)
    if tell is not None:
        tell.ended(asdict(summary))
    return JobResult(exit_code=code, summary=summary, paths=paths)


def _summary(
    settings: Settings,
    done: LiveOutcome,
    started: datetime,
    digest: str | None,
    plan: plans.Plan | None,
) -> Summary:
    """The command's summary (summary.json, the ledger's end, --json, the notification)."""
    counts = report.count_statuses(done.columns.status)
    code = exit_code_for(counts, stop_reason=done.stop_reason)
    source = settings.input
    return Summary(
        input=str(source) if source else str(settings.out),
        dry_run=not settings.sends,
        rows=len(done.columns.row),
        counts=counts,
        requests=done.requests,
        started_at=iso(started),
        finished_at=now_iso(),
        exit_code=int(code),
        kind=settings.kind,
        reads=done.reads,
        writes=done.writes,
        changes=report.count_changes(done.columns.change),
        stop_reason=done.stop_reason,
        user=history.user(),
        host=history.host(),
        input_sha256=(digest if digest is not None else _sha256(source)) if source else "",
        version=__version__,
        requests_by_day=done.requests_by_day,
        stop_message=done.stop_message,
        rate=settings.rate,
        read_first=not settings.no_read,
        account_limits=(
            {"minute": done.limits[0], "day": done.limits[1]} if any(done.limits) else None
        ),
        customers_read=done.customers_read,
        read_batch=settings.read_batch,
        quota_reserve=settings.quota_reserve.text,
        base_url=settings.base_url,
        plan=plan.folder.name if plan else None,
    )


def _keep_row_errors(folder: Path, found: tuple[str, ...], err: TextIO) -> None:
    """The tracebacks of the first rows a bug failed, beside the reports, named on stderr."""
    place = folder / ROW_ERRORS_FILE
    try:
        place.write_text("\n\n".join(found), encoding="utf-8")
    except OSError as exc:  # as any report that cannot be written (a full disk: exit 3)
        raise JobFolderError(f"cannot write {place}: {why(exc)}") from None
    print(f"Note: a bug failed some rows; the first tracebacks are in {place}.", file=err)


def _write(
    settings: Settings,
    done: LiveOutcome,
    extras: Mapping[str, pa.Array],
    summary: Summary,
    folder: Path,
    err: TextIO,
) -> tuple[Path, ReportPaths, list[str], dict[str, str | None]]:
    """The run folder (reports, outcomes, the input's copy), then ``OUT/``: (the folder,
    its reports, what ``OUT/`` kept back in words, where each report of this command is
    to be read). A file that cannot be written is exit 3 once requests went out (the
    ledger has every outcome), else 2."""
    source = settings.input
    try:
        if source is not None:
            note = history.copy_input(source, folder, summary.input_sha256)
            if note:
                print(f"Note: {note}; the reports are of the file as it was loaded.", file=err)
        paths = report.write_reports(folder, done.columns, extras, summary)
        if done.row_errors:
            _keep_row_errors(folder, done.row_errors, err)
        c = done.columns
        if done.held is not None:  # a plan: what run --plan will hold each customer to
            plans.write_plan(folder, c.fusebillId, c.geotabId, c.status, c.change, done.held)
        before = history.signatures(settings.out, paths)
        kept = history.publish(settings.out, paths, source)
        reports = history.where_to_read(settings.out, paths, before)
    except OutputError as exc:
        if done.requests:
            exc.exit_code = ExitCode.STOPPED
        raise
    return folder, paths, kept, {"folder": str(folder.absolute()), **reports}
