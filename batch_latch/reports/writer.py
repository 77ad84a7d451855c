"""Write results.csv, failed.csv, summary.json and results.xlsx, each atomically.

Arrow's CSV writer does a million rows in well under a second. Every file is written to
a temporary name, flushed, synced and renamed over the old one (``os.replace``), so a
crash mid-write leaves the previous report, never half of a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import TypeAdapter, ValidationError

from batch_latch.errors import NotAJob, ReportError, why
from batch_latch.jobfolder.files import atomic_write
from batch_latch.jobfolder.history import RUNS, ReportPaths
from batch_latch.jobfolder.ledger import FILENAME as LEDGER
from batch_latch.optiontypes import DEFAULT_READ_BATCH, DEFAULT_RESERVE
from batch_latch.outcome import ResultColumns
from batch_latch.reports.xlsx_rows import MAX_XLSX_ROWS
from batch_latch.sheet import formula
from batch_latch.vocab import (
    CHANGES,
    FAILED_STATUSES,
    STATUSES,
    TOOL_COLUMNS,
    Change,
    RunKind,
    Status,
    StopReason,
)

_BOM = b"\xef\xbb\xbf"
#: Rows per batch in Arrow's CSV writer (larger than its default of 1,024: fewer batches).
_CSV_BATCH = 65_536


@dataclass(frozen=True)
class Summary:
    input: str
    dry_run: bool
    rows: int
    counts: dict[Status, int]
    requests: int
    started_at: str
    finished_at: str
    exit_code: int
    kind: RunKind
    reads: int
    writes: int
    changes: dict[Change, int]
    stop_reason: StopReason | None
    user: str
    host: str
    input_sha256: str
    version: str
    requests_by_day: dict[str, int] = field(default_factory=dict)
    stop_message: str = ""
    rate: float = 0.0
    read_first: bool = True
    account_limits: dict[str, int | None] | None = None
    customers_read: int = 0
    read_batch: int = DEFAULT_READ_BATCH
    quota_reserve: str = DEFAULT_RESERVE.text
    plan: str | None = None
    base_url: str = ""

    @classmethod
    def load(cls, path: Path) -> Summary:
        """A run folder's ``summary.json``, checked field by field; ``ValueError`` when it
        is not one (keys of a newer version are ignored)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            return _SUMMARY.validate_python({k: v for k, v in data.items() if k in known})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ValueError(f"{where}: {first['msg']}") from None


_SUMMARY: TypeAdapter[Summary] = TypeAdapter(Summary)


def job_summaries(out: Path) -> list[tuple[Path, Summary]]:
    """Every finished command of the job in ``out`` (its run folder and summary), oldest
    first; ``NotAJob`` when ``out`` is no job folder or a summary is damaged."""
    runs = out / RUNS
    if not (out / LEDGER).is_file() and not runs.is_dir():
        raise NotAJob(
            f"{out} is not a batch-latch job folder (no {LEDGER} and no {RUNS}/); give "
            "the --out folder of a run"
        )
    found = []
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        path = folder / "summary.json"
        if not path.exists():
            continue  # a command still running, or one that died before its reports
        try:
            found.append((folder, Summary.load(path)))
        except (OSError, ValueError) as exc:
            raise NotAJob(
                f"{path} is damaged ({str(exc)[:80]}); move that run folder away and try again"
            ) from None
    return found


def count(values: pa.Array, names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for item in pc.value_counts(values).to_pylist():
        if item["values"] == "" and "" not in names:
            continue
        # A dictionary-coded column may hold one value under several codes: add them up.
        counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def count_statuses(status: pa.Array) -> dict[Status, int]:
    return {Status(k): n for k, n in count(status, STATUSES).items()}


def count_changes(change: pa.Array) -> dict[Change, int]:
    return {Change(k): n for k, n in count(change, CHANGES).items()}


def output_names(extra_names: list[str]) -> list[str]:
    """Input columns keep their names unless ours took them: then ``input_<name>``."""
    taken = set(TOOL_COLUMNS)
    names = []
    for name in extra_names:
        candidate = name
        while candidate in taken:
            candidate = f"input_{candidate}"
        taken.add(candidate)
        names.append(candidate)
    return names


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def build_table(
    columns: ResultColumns, extras: Mapping[str, pa.Array], *, escape: bool = True
) -> pa.Table:
    """The report's table; ``escape`` guards CSV cells against formula injection (an xlsx
    needs no guard: its cells are written as text)."""
    arrays: dict[str, pa.Array] = {}
    for name, value in columns.items():
        arrays[name] = formula.escape(value) if escape and _is_text(value.type) else value
    for name, value in zip(output_names(list(extras)), extras.values()):
        arrays[formula.escape_text(name) if escape else name] = (
            formula.escape(value) if escape else value
        )
    return pa.table(arrays)


def write_reports(
    out_dir: Path,
    columns: ResultColumns,
    extras: Mapping[str, pa.Array],
    summary: Summary,
) -> ReportPaths:
    """results.csv, failed.csv, summary.json and (up to 200,000 rows) results.xlsx."""
    paths = ReportPaths(
        results=out_dir / "results.csv",
        failed=out_dir / "failed.csv",
        summary=out_dir / "summary.json",
        xlsx=out_dir / "results.xlsx" if summary.rows <= MAX_XLSX_ROWS else None,
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table = build_table(columns, extras)
        _write_csv(paths.results, table)
        failed = pc.is_in(columns.status, value_set=pa.array(FAILED_STATUSES))
        _write_csv(paths.failed, table.filter(failed))
        if paths.xlsx is not None:
            from batch_latch.reports import (
                xlsx as report_xlsx,  # XlsxWriter: imported only when needed
            )

            report_xlsx.write_results_xlsx(
                paths.xlsx,
                build_table(columns, extras, escape=False),
                summary.counts,
                summary.changes,
                title=f"{summary.kind} of {Path(summary.input).name}, {summary.started_at}",
                facts=summary_facts(summary, out_dir),
                plan=summary.kind is RunKind.PLAN,
            )
        text = json.dumps(asdict(summary), indent=2, ensure_ascii=False) + "\n"
        atomic_write(paths.summary, lambda sink: sink.write(text.encode("utf-8")))
    except OSError as exc:
        where = exc.filename or out_dir
        raise ReportError(f"cannot write reports to {where}: {why(exc)}") from None
    return paths


def summary_facts(summary: Summary, out_dir: Path) -> list[tuple[str, str]]:
    """What the command ran against, for the Summary sheet: enough to tell a reviewed plan
    from another one (the run folder is the name ``run --plan`` takes)."""
    folder = out_dir.name + (
        " (give it to run --plan, or latest)" if summary.kind is RunKind.PLAN else ""
    )
    return [
        ("base URL", summary.base_url or "(none: nothing sent)"),
        ("user", f"{summary.user} on {summary.host}" if summary.host else summary.user),
        ("input", summary.input),
        ("input SHA-256", summary.input_sha256),
        ("run folder", folder),
    ]


def _write_csv(path: Path, table: pa.Table) -> None:
    """Unquoted when no cell needs quotes (a million-row report is ~10 % smaller, and on a
    slow disk bytes are time); Arrow refuses a cell with a comma, quote or line break, and
    then the file is written again with every text cell quoted."""
    for quoting in ("none", "needed"):
        options = pacsv.WriteOptions(
            include_header=True, quoting_style=quoting, batch_size=_CSV_BATCH
        )

        def write(sink: pa.NativeFile, options: pacsv.WriteOptions = options) -> None:
            sink.write(_BOM)  # Excel reads UTF-8 only when the file starts with a BOM
            pacsv.write_csv(table, sink, write_options=options)

        try:
            atomic_write(path, write)
            return
        except pa.ArrowInvalid:
            if quoting == "needed":
                raise
