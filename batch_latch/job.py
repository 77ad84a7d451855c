"""One run of the job, end to end: load, validate, send (unless dry run), report."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from batch_latch import loader, report, validate
from batch_latch.config import RunSettings
from batch_latch.report import ReportPaths, ResultColumns, Summary

EXIT_OK, EXIT_ROW_PROBLEMS, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass(frozen=True)
class JobResult:
    exit_code: int
    summary: Summary
    paths: ReportPaths
    stop_reason: str | None = None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def exit_code_for(counts: dict[str, int], *, interrupted: bool = False) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if counts.get("pending"):
        return EXIT_STOPPED
    if any(counts.get(s) for s in ("invalid", "not_found", "failed")):
        return EXIT_ROW_PROBLEMS
    return EXIT_OK


def run(settings: RunSettings, *, stdout: TextIO | None = None) -> JobResult:
    started = now_iso()
    sheet = loader.load(
        settings.input,
        sheet=settings.sheet,
        fusebill_column=settings.fusebill_column,
        geotab_column=settings.geotab_column,
    )
    verdicts = validate.validate(sheet, allow_shared_geotab_id=settings.allow_shared_geotab_id)
    requests = 0
    stop_reason = None
    interrupted = False
    if settings.dry_run:
        columns = dry_run_columns(verdicts)
    else:
        from batch_latch import runner  # the live side pulls in requests and tqdm

        outcome = runner.latch(settings, verdicts)
        columns, requests = outcome.columns, outcome.requests
        stop_reason, interrupted = outcome.stop_reason, outcome.interrupted
    counts = report.count_statuses(columns.status)
    code = exit_code_for(counts, interrupted=interrupted)
    summary = Summary(
        input=str(settings.input),
        dry_run=settings.dry_run,
        rows=len(verdicts),
        counts=counts,
        requests=requests,
        started_at=started,
        finished_at=now_iso(),
        exit_code=code,
    )
    try:
        paths = report.write_reports(settings.out, columns, sheet.extras, summary)
    except report.ReportError as exc:
        if not settings.dry_run:  # requests went out: outcomes are in the checkpoint
            exc.exit_code = EXIT_STOPPED
        raise
    print_summary(summary, paths, stdout or sys.stdout)
    return JobResult(exit_code=code, summary=summary, paths=paths, stop_reason=stop_reason)


def dry_run_columns(verdicts: validate.Verdicts) -> ResultColumns:
    n = len(verdicts)
    return ResultColumns(
        row=verdicts.rows,
        fusebillId=verdicts.fusebill,
        geotabId=verdicts.geotab,
        status=verdicts.status,
        http_status=pa.nulls(n, pa.int64()),
        attempts=pc.fill_null(pa.nulls(n, pa.int64()), 0),
        message=verdicts.message,
        error_key=verdicts.error_key,
        finished_at=pc.fill_null(pa.nulls(n, pa.string()), ""),
    )


_LABELS = {
    "valid": "valid (would be sent)",
    "success": "success",
    "not_found": "not found (404)",
    "failed": "failed",
    "invalid": "invalid (not sent)",
    "duplicate": "duplicate (not sent)",
    "pending": "pending (not finished)",
}


def print_summary(summary: Summary, paths: ReportPaths, out: TextIO) -> None:
    kind = "Dry run" if summary.dry_run else "Run"
    out.write(f"{kind} of {summary.input}: {summary.rows} rows")
    out.write(f", {summary.requests} requests sent\n" if not summary.dry_run else "\n")
    for status in report.STATUSES:
        count = summary.counts.get(status, 0)
        if count:
            out.write(f"  {_LABELS[status]:<24} {count:>9}\n")
    failed = sum(summary.counts.get(s, 0) for s in report.FAILED_STATUSES)
    out.write(f"Reports in {paths.results.parent}/\n")
    out.write(f"  {paths.results.name:<13} every row with its status\n")
    out.write(f"  {paths.failed.name:<13} the {failed} rows to fix or send again\n")
    out.write(f"  {paths.summary.name:<13} counts and exit code\n")
    out.flush()
