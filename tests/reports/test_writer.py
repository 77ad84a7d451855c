"""results.csv, failed.csv, summary.json: columns, BOM, formula escaping, round trip, atomicity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batch_latch.errors import ReportError
from batch_latch.outcome import ResultColumns, dry_run_columns
from batch_latch.reports import writer as report
from batch_latch.reports.writer import Summary
from batch_latch.sheet import formula, loader
from batch_latch.sheet.validate import validate
from batch_latch.vocab import FAILED_STATUSES, STATUSES, Change, RunKind, Status, StopReason

TOOL_HEAD = ["row", "fusebillId", "geotabId", "status", "http_status", "attempts", "message"]
RISKY = ("=", "+", "-", "@", "\t", "\r", "\n")


def summary(rows: int, exit_code: int = 1) -> Summary:
    return Summary(
        input="in.csv",
        dry_run=True,
        rows=rows,
        counts={Status.VALID: rows},
        requests=0,
        started_at="2024-01-01T00:00:00Z",
        finished_at="2024-01-01T00:00:01Z",
        exit_code=exit_code,
        kind=RunKind.DRY_RUN,
        reads=0,
        writes=0,
        changes={},
        stop_reason=None,
        user="ops",
        host="desk",
        input_sha256="0" * 64,
        version="0.1.0",
    )


def dry_run(
    tmp_path: Path, helpers: Any, records: list[list[str]], out: str = "out"
) -> tuple[Path, loader.Sheet]:
    """Load ``records`` from a real CSV, validate, write the dry-run reports; return the folder."""
    sheet = loader.load(helpers.write_csv(tmp_path / "in.csv", records))
    columns = dry_run_columns(validate(sheet))
    folder = tmp_path / out
    report.write_reports(folder, columns, sheet.extras, summary(len(sheet)))
    return folder, sheet


def by_hand(statuses: list[str], fusebill: list[str], geotab: list[str]) -> ResultColumns:
    n = len(statuses)
    return ResultColumns(
        row=pa.array(range(2, 2 + n), type=pa.int64()),
        fusebillId=pa.array(fusebill, type=pa.string()),
        geotabId=pa.array(geotab, type=pa.string()),
        status=pa.array(statuses, type=pa.string()),
        http_status=pa.array([200 if s == "success" else None for s in statuses], pa.int64()),
        attempts=pa.array([1] * n, type=pa.int64()),
        message=pa.array([f"message {i}" for i in range(n)], type=pa.string()),
        error_key=pa.array([""] * n, type=pa.string()),
        change=pa.array(["new" if s == "success" else "" for s in statuses], type=pa.string()),
        previous_geotabId=pa.array([""] * n, type=pa.string()),
        finished_at=pa.array(["2024-01-01T00:00:00Z"] * n, type=pa.string()),
    )


# --- columns --------------------------------------------------------------------------------


def test_columns_and_order(tmp_path: Path, helpers: Any) -> None:
    records = [
        ["Zone", "Fusebill ID", "status", "Geotab ID", "row", "Notes", "input_status"],
        ["z1", "1", "mine", "g1", "r1", "n1", "is1"],
        ["z2", "-2", "theirs", "g2", "r2", "n2", "is2"],
    ]
    folder, _ = dry_run(tmp_path, helpers, records)
    results = helpers.read_csv_records(folder / "results.csv")
    header = results[0]
    assert header[:7] == TOOL_HEAD
    # Then the tool's own columns, then the input's others in input order; names already
    # taken are carried as input_<name> (and again, if that is taken too).
    carried = header[-5:]
    assert carried[0] == "Zone"
    assert carried[1] == "input_status"
    assert carried[2] == "input_row"
    assert carried[3] == "Notes"
    assert carried[4] not in ("input_status", "status") and carried[4].endswith("input_status")
    assert len(set(header)) == len(header)
    tool_own = header[7:-5]
    assert tool_own == ["error_key", "change", "previous_geotabId", "finished_at"]
    assert not set(tool_own) & {"Zone", "Notes"}
    rows = [dict(zip(header, r)) for r in results[1:]]
    assert [r["Zone"] for r in rows] == ["z1", "z2"]
    assert [r["input_status"] for r in rows] == ["mine", "theirs"]
    assert [r["input_row"] for r in rows] == ["r1", "r2"]
    assert [r[carried[4]] for r in rows] == ["is1", "is2"]
    assert [r["status"] for r in rows] == ["valid", "invalid"]
    assert [r["row"] for r in rows] == ["2", "3"]
    assert [r["http_status"] for r in rows] == ["", ""]
    assert [r["attempts"] for r in rows] == ["0", "0"]


def test_bom_and_utf8(tmp_path: Path, helpers: Any) -> None:
    folder, _ = dry_run(
        tmp_path, helpers, [["fusebillId", "geotabId", "Ort"], ["1", "Zürich", "é"]]
    )
    for name in ("results.csv", "failed.csv"):
        data = (folder / name).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        assert not data[3:].startswith(b"\xef\xbb\xbf")  # exactly one BOM
        data.decode("utf-8")
    assert "Zürich" in (folder / "results.csv").read_text(encoding="utf-8-sig")


def test_ids_are_written_as_their_exact_text(tmp_path: Path, helpers: Any) -> None:
    records = [
        ["fusebillId", "geotabId", "Code"],
        ["0909909", "0909909", "00012"],
        ["12717595.0", "1.0", "1.0"],
        ["1.27E+07", "00042", "1E3"],
    ]
    folder, _ = dry_run(tmp_path, helpers, records)
    rows = helpers.read_csv_records(folder / "results.csv")
    header = rows[0]
    got = [dict(zip(header, r)) for r in rows[1:]]
    # Valid rows: the normalised fusebillId; the geotabId and other cells exactly as given.
    assert [(r["fusebillId"], r["geotabId"], r["Code"]) for r in got] == [
        ("909909", "0909909", "00012"),
        ("12717595", "1.0", "1.0"),
        ("1.27E+07", "00042", "1E3"),  # invalid: raw text
    ]
    # And it is text in the file itself, not a number a reader could reformat.
    raw = (folder / "results.csv").read_text(encoding="utf-8-sig")
    assert "0909909" in raw and "00012" in raw


def test_invalid_rows_show_raw_text(tmp_path: Path, helpers: Any) -> None:
    records = [["fusebillId", "geotabId"], ["  12 34 ", "  spaced  "], [" 7 ", " \x00 "]]
    folder, _ = dry_run(tmp_path, helpers, records)
    rows = helpers.read_csv_records(folder / "results.csv")[1:]
    assert (rows[0][1], rows[0][2]) == ("  12 34 ", "  spaced  ")
    assert (rows[1][1], rows[1][2]) == (" 7 ", " \x00 ")


# --- formula injection ----------------------------------------------------------------------


@pytest.mark.parametrize("start", RISKY, ids=[repr(c) for c in RISKY])
def test_risky_cells_get_an_apostrophe_everywhere(tmp_path: Path, helpers: Any, start: str) -> None:
    cell = f"{start}cmd|' /C calc'!A0"
    records = [
        ["fusebillId", "geotabId", f"{start}Header", "Notes"],
        [cell, "g1", cell, cell],  # invalid fusebillId: shown raw
        ["1", cell, "x", "y"],  # geotabId starting with a risky character
    ]
    folder, _ = dry_run(tmp_path, helpers, records)
    for name in ("results.csv", "failed.csv"):
        rows = helpers.read_csv_records(folder / name)
        # The loader trims header names, so a tab/CR/LF before "Header" is gone by then.
        assert (f"'{start}Header" if start.strip() else "Header") in rows[0]
        for record in rows:
            for value in record:
                assert not value.startswith(RISKY), (name, value)
        flat = [value for record in rows[1:] for value in record]
        assert flat.count(f"'{cell}") >= 3


@pytest.mark.parametrize("start", RISKY, ids=[repr(c) for c in RISKY])
def test_risky_header_names_and_tool_cells(tmp_path: Path, helpers: Any, start: str) -> None:
    columns = by_hand(["invalid"], [f"{start}1"], [f"{start}g"])
    columns = dataclasses.replace(
        columns, message=pa.array([f"{start}msg"]), error_key=pa.array(["k"])
    )
    extras = {f"{start}Name": pa.array([f"{start}v"]), "Plain": pa.array(["p"])}
    report.write_reports(tmp_path, columns, extras, summary(1))
    for name in ("results.csv", "failed.csv"):
        header, row = helpers.read_csv_records(tmp_path / name)
        assert header[-2:] == [f"'{start}Name", "Plain"]
        assert row[1:3] == [f"'{start}1", f"'{start}g"]
        assert row[6] == f"'{start}msg"
        assert row[-2:] == [f"'{start}v", "p"]


def test_safe_cells_are_not_escaped(tmp_path: Path, helpers: Any) -> None:
    records = [
        ["fusebillId", "geotabId", "Notes"],
        ["1", "g1", "plain"],
        ["2", "g2", " =leading space"],
        ["3", "g3", "'quoted"],
        ["4", "g4", "a=b-c+d@e"],
    ]
    folder, _ = dry_run(tmp_path, helpers, records)
    notes = [r[-1] for r in helpers.read_csv_records(folder / "results.csv")[1:]]
    assert notes == ["plain", " =leading space", "'quoted", "a=b-c+d@e"]


def test_cell_already_starting_with_apostrophe_and_formula(tmp_path: Path) -> None:
    # The loader removes one "'" before a formula character, so "'=x" is written "''=x"
    # and comes back as "'=x".
    column = pa.array(["'=x", "''+y", "=z", "'abc"], type=pa.string())
    assert formula.escape(column).to_pylist() == ["''=x", "'''+y", "'=z", "'abc"]


def test_failed_csv_round_trips_through_the_loader(tmp_path: Path, helpers: Any) -> None:
    hostile = [
        "=SUM(A1)",
        "+1",
        "-1",
        "@x",
        "\tTAB",
        "\rCR",
        "\nLF",
        "'=already",
        "''=twice",
        "'plain",
        "a,b;c\td",
        'say "hi"',
        "multi\r\nline",
        "  spaced  ",
        "0909909",
        "",
    ]
    records: list[list[str]] = [["fusebillId", "geotabId", "=Notes", "status", "Other"]]
    for i, text in enumerate(hostile):
        records.append([text or "x", f"{text}-{i}", text, text, str(i)])
    folder, sheet = dry_run(tmp_path, helpers, records)
    verdicts = validate(sheet)
    failed_rows = [i for i, s in enumerate(verdicts.status.to_pylist()) if s in FAILED_STATUSES]
    assert failed_rows  # most of these rows are invalid

    back = loader.load(folder / "failed.csv")
    assert len(back) == len(failed_rows)
    fusebill = sheet.fusebill.to_pylist()
    geotab = sheet.geotab.to_pylist()
    assert back.fusebill.to_pylist() == [fusebill[i] for i in failed_rows]
    assert back.geotab.to_pylist() == [geotab[i] for i in failed_rows]
    assert back.extras["=Notes"].to_pylist() == [
        sheet.extras["=Notes"].to_pylist()[i] for i in failed_rows
    ]
    # The input's own "status" column, carried as input_status, gets its name back.
    assert back.extras["status"].to_pylist() == [
        sheet.extras["status"].to_pylist()[i] for i in failed_rows
    ]
    # The tool's own columns are not input columns: the fed-back sheet keeps the original
    # sheet's row numbers instead.
    assert not {"row", "http_status", "attempts", "message", "change"} & set(back.extras)
    assert back.fed_back
    assert back.rows.to_pylist() == [i + 2 for i in failed_rows]


def test_results_csv_round_trips_too(tmp_path: Path, helpers: Any) -> None:
    records = [["fusebillId", "geotabId"], ["=1", "-g"], ["1", "@g"], ["2", "'=g"]]
    folder, sheet = dry_run(tmp_path, helpers, records)
    assert sheet.geotab.to_pylist() == ["-g", "@g", "=g"]  # the input's own "'" went on load
    back = loader.load(folder / "results.csv")
    assert back.fusebill.to_pylist() == ["=1", "1", "2"]
    assert back.geotab.to_pylist() == ["-g", "@g", "=g"]


# --- failed.csv -----------------------------------------------------------------------------


def test_failed_csv_holds_only_rows_to_fix(tmp_path: Path, helpers: Any) -> None:
    statuses = ["success", "invalid", "duplicate", "not_found", "valid", "failed", "pending"]
    columns = by_hand(statuses, [str(i + 1) for i in range(7)], [f"g{i}" for i in range(7)])
    extras = {"Notes": pa.array([f"n{i}" for i in range(7)], type=pa.string())}
    report.write_reports(tmp_path, columns, extras, summary(7))
    results = helpers.read_csv_records(tmp_path / "results.csv")
    failed = helpers.read_csv_records(tmp_path / "failed.csv")
    assert [r[3] for r in results[1:]] == statuses
    assert [r[3] for r in failed[1:]] == ["invalid", "not_found", "failed", "pending"]
    assert failed[0] == results[0]  # the same columns
    assert [r[0] for r in failed[1:]] == ["3", "5", "7", "8"]  # in input order
    assert [r[-1] for r in failed[1:]] == ["n1", "n3", "n5", "n6"]
    assert [r[4] for r in results[1:]] == ["200", "", "", "", "", "", ""]
    # It is a valid input file.
    back = loader.load(tmp_path / "failed.csv")
    assert back.fusebill.to_pylist() == ["2", "4", "6", "7"]
    assert validate(back).status.to_pylist() == ["valid"] * 4


def test_failed_csv_with_no_failed_rows_is_header_only(tmp_path: Path, helpers: Any) -> None:
    columns = by_hand(["success", "duplicate"], ["1", "1"], ["a", "a"])
    report.write_reports(tmp_path, columns, {}, summary(2, exit_code=0))
    assert helpers.read_csv_records(tmp_path / "failed.csv")[1:] == []


# --- summary.json and atomic writes ---------------------------------------------------------


def test_summary_json(tmp_path: Path) -> None:
    columns = by_hand(["valid", "invalid"], ["1", "x"], ["a", "b"])
    report.write_reports(tmp_path, columns, {}, summary(2))
    data = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    contract = {"input", "dry_run", "rows", "counts", "requests", "started_at", "finished_at"}
    contract |= {"exit_code", "kind", "reads", "writes", "changes", "stop_reason", "user"}
    contract |= {"host", "input_sha256", "version"}
    assert contract <= set(data)
    assert data["rows"] == 2 and data["dry_run"] is True and data["exit_code"] == 1
    assert isinstance(data["counts"], dict) and data["requests"] == 0
    assert (data["kind"], data["reads"], data["writes"]) == ("dry-run", 0, 0)
    assert data["stop_reason"] is None and isinstance(data["changes"], dict)
    assert (data["user"], data["host"], data["version"]) == ("ops", "desk", "0.1.0")


def test_count_changes_lists_every_change_and_skips_empty() -> None:
    counts = report.count_changes(pa.array(["new", "", "relatch", "new", "unchanged", ""]))
    assert counts == {"new": 2, "unchanged": 1, "relatch": 1, "unknown": 0, "undo": 0}


def test_change_and_previous_columns_are_written(tmp_path: Path, helpers: Any) -> None:
    columns = by_hand(["success", "failed"], ["1", "2"], ["A", "B"])
    columns = dataclasses.replace(
        columns,
        change=pa.array(["relatch", ""]),
        previous_geotabId=pa.array(["=OLD", "X"]),
    )
    report.write_reports(tmp_path, columns, {}, summary(2))
    header, *rows = helpers.read_csv_records(tmp_path / "results.csv")
    got = [dict(zip(header, r)) for r in rows]
    assert [(r["change"], r["previous_geotabId"]) for r in got] == [("relatch", "'=OLD"), ("", "X")]


def test_count_statuses_lists_every_status() -> None:
    counts = report.count_statuses(pa.array(["valid", "invalid", "valid"]))
    assert counts[Status.VALID] == 2 and counts[Status.INVALID] == 1
    assert set(counts) == set(STATUSES)
    assert sum(counts.values()) == 3


def test_rewrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path, helpers: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("old results", encoding="utf-8")
    (out / "keep.txt").write_text("someone else's file", encoding="utf-8")
    first = by_hand(["valid", "invalid"], ["1", "x"], ["a", "b"])
    report.write_reports(out, first, {}, summary(2))
    second = by_hand(["valid"], ["1"], ["a"])
    paths = report.write_reports(out, second, {}, summary(1, exit_code=0))
    assert sorted(p.name for p in out.iterdir()) == [
        "failed.csv",
        "keep.txt",
        "results.csv",
        "results.xlsx",
        "summary.json",
    ]
    assert paths.results == out / "results.csv"
    assert len(helpers.read_csv_records(out / "results.csv")) == 2  # header + 1 row: rewritten
    assert json.loads((out / "summary.json").read_text())["rows"] == 1


def test_failed_write_keeps_the_old_report_and_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("old results", encoding="utf-8")
    (out / "failed.csv").mkdir()  # renaming a file over a directory fails
    columns = by_hand(["invalid"], ["x"], ["a"])
    with pytest.raises(ReportError) as info:
        report.write_reports(out, columns, {}, summary(1))
    message = str(info.value)
    assert message and "\n" not in message
    assert info.value.exit_code == 2
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.endswith(".tmp") or n.startswith(".")] == []
    # results.csv was written whole before failed.csv failed; it is never half written.
    assert (out / "results.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_out_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file", encoding="utf-8")
    with pytest.raises(ReportError):
        report.write_reports(blocker, by_hand(["valid"], ["1"], ["a"]), {}, summary(1))


def test_summary_words_are_typed_and_written_as_their_values(tmp_path: Path) -> None:
    typed = dataclasses.replace(
        summary(3, 3), stop_reason=StopReason.API_DOWN, changes={Change.NEW: 1}
    )
    text = json.dumps(dataclasses.asdict(typed), indent=2, ensure_ascii=False)
    words = {"kind": "dry-run", "stop_reason": "api_down", "changes": {"new": 1}}
    plain = {**dataclasses.asdict(typed), **words, "counts": {"valid": 3}}
    assert text == json.dumps(plain, indent=2, ensure_ascii=False)
    path = tmp_path / "summary.json"
    path.write_text(text, encoding="utf-8")
    loaded = Summary.load(path)
    assert loaded.kind is RunKind.DRY_RUN and loaded.stop_reason is StopReason.API_DOWN
    assert [type(k) for k in (*loaded.counts, *loaded.changes)] == [Status, Change]
    assert loaded == typed
