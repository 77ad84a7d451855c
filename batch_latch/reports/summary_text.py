"""The end-of-command summary on stdout: counts, changes, where the reports are, and (after
a stop) why and what to do, so that ``> run.log`` keeps the whole story."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from batch_latch.jobfolder.history import ReportPaths
from batch_latch.plan_words import plan_lines
from batch_latch.reports.writer import Summary
from batch_latch.vocab import STATUS_LABELS, Change, RunKind, Status, plural

_TITLES = {
    RunKind.RUN: "Run",
    RunKind.DRY_RUN: "Dry run",
    RunKind.PLAN: "Plan",
    RunKind.UNDO: "Undo",
}


def print_summary(
    summary: Summary, paths: ReportPaths, out_dir: Path, kept: list[str], out: TextIO
) -> None:
    kind = summary.kind
    title = "Undo dry run" if kind is RunKind.UNDO and summary.dry_run else _TITLES[kind]
    out.write(f"{title} of {summary.input}: {plural(summary.rows, 'row')}")
    if summary.requests or not summary.dry_run:
        out.write(
            f", {plural(summary.requests, 'request')} sent ({plural(summary.reads, 'read')}, "
            f"{plural(summary.writes, 'write')})"
        )
    out.write("\n")
    for status in Status:
        if summary.counts.get(status, 0):
            out.write(f"  {STATUS_LABELS[status]:<24} {summary.counts[status]:>9,}\n")
    done = [c for c in Change if c is not Change.NONE and summary.changes.get(c)]
    changes = [f"{summary.changes[c]:,} {c}" for c in done]
    if changes:
        out.write(f"  changes: {', '.join(changes)}\n")
    if kind is RunKind.PLAN:
        _plan_line(summary, out)
    if summary.stop_message:
        out.write(f"{summary.stop_message}\n")
    out.write(f"Reports in {out_dir}/ (this command's own copy: {paths.results.parent}/)\n")
    out.write(f"  {'results.csv':<13} every row with its status\n")
    if paths.xlsx is not None:
        out.write(f"  {'results.xlsx':<13} the same, for Excel\n")
    out.write(f"  {'failed.csv':<13} {_failed_line(summary.counts)}\n")
    out.write(f"  {'summary.json':<13} counts, requests and exit code\n")
    for line in kept:
        out.write(f"Note: {line}.\n")
    out.flush()


def print_json(summary: Mapping[str, Any], reports: Mapping[str, str | None], out: TextIO) -> None:
    """``--json``: the summary's keys and ``reports`` (each report of this command by the
    path of its copy, and its run ``folder``), as the one JSON object on stdout."""
    text = json.dumps({**summary, "reports": dict(reports)}, indent=2, ensure_ascii=False)
    out.write(text + "\n")
    out.flush()


def _failed_line(counts: Mapping[Status, int]) -> str:
    fix = counts.get(Status.INVALID, 0)
    refused = counts.get(Status.FAILED, 0) + counts.get(Status.NOT_FOUND, 0)
    waiting = counts.get(Status.PENDING, 0)
    if not fix + refused + waiting:
        return "no rows to fix or send again"
    return (
        f"{fix:,} to fix (invalid), {refused:,} refused or not found, {waiting:,} not sent yet "
        "(pending)"
    )


def _plan_line(summary: Summary, out: TextIO) -> None:
    """What ``run --plan`` of this plan will do (the words of :mod:`plan_words`)."""
    first, *rest = plan_lines(summary.changes, summary.counts)
    out.write(f"{first}\n")
    for line in rest:
        out.write(f"  {line}\n")
