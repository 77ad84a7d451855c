"""File-level input errors through the real command line: exit 2, one line, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from batch_latch import cli
from tests.conftest import Helpers

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

HEADER = b"fusebillId,geotabId\r\n"


def _inputs(folder: Path, xlsx_bytes: bytes) -> dict[str, tuple[Path, list[str]]]:
    """name -> (input path, extra CLI options); each must fail as a file-level error."""
    folder.mkdir()
    (folder / "a-directory.csv").mkdir()
    contents = {
        "notes.txt": HEADER + b"1,2\r\n",
        "old.xls": b"\xd0\xcf\x11\xe0" + b"\0" * 64,
        "empty.csv": b"",
        "header-only.csv": HEADER,
        # The header is looked for in the first 20 non-blank rows only.
        "no-header.csv": b"\r\n" + b"A title line\r\n" * 20 + b"fusebillId,geotabId\r\n1,2\r\n",
        "no-columns.csv": b"customer,reseller\r\n1,2\r\n",
        "two-columns.csv": b"Fusebill ID,fusebillId,geotabId\r\n1,1,2\r\n",
        "garbage.xlsx": b"PK\x03\x04 definitely not a workbook",
        "truncated.xlsx": xlsx_bytes[: len(xlsx_bytes) * 2 // 3],
        "good.xlsx": xlsx_bytes,
        "good.csv": HEADER + b"1,2\r\n",
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    with zipfile.ZipFile(folder / "not-a-workbook.xlsx", "w") as archive:
        archive.writestr("readme.txt", "a zip, but no workbook inside")
    cases = {
        "missing": (folder / "missing.csv", []),
        "directory": (folder / "a-directory.csv", []),
        "unknown extension": (folder / "notes.txt", []),
        "xls": (folder / "old.xls", []),
        "empty": (folder / "empty.csv", []),
        "header only": (folder / "header-only.csv", []),
        "no header": (folder / "no-header.csv", []),
        "columns not found": (folder / "no-columns.csv", []),
        "column override not found": (folder / "good.csv", ["--fusebill-column", "Customer"]),
        "two candidate columns": (folder / "two-columns.csv", []),
        "garbage xlsx": (folder / "garbage.xlsx", []),
        "truncated xlsx": (folder / "truncated.xlsx", []),
        "zip without workbook": (folder / "not-a-workbook.xlsx", []),
        "unknown sheet": (folder / "good.xlsx", ["--sheet", "Nope"]),
        "sheet on a csv": (folder / "good.csv", ["--sheet", "Data"]),
    }
    return {k: (p, opts) for k, (p, opts) in cases.items()}


# Each CLI start-up costs about half a second of CPU (pyarrow): a representative few run
# as real processes, all of them in-process through ``cli.main``.
SUBPROCESS_CASES = ("truncated xlsx", "unknown sheet")
HOSTILE = {
    # name -> (bytes, expected exit code, expected statuses)
    "ragged.csv": (HEADER + b"1,a\r\n2\r\n3,c,extra\r\n", 1, ["valid", "invalid", "valid"]),
    "ragged-1252.csv": (HEADER + b"1,caf\xe9\r\n2,x,na\xefve\r\n", 0, ["valid", "valid"]),
    "undefined-1252.csv": (HEADER + b"1,a\x81b\r\n2,ok\r\n", 1, ["invalid", "valid"]),
    "nul.csv": (HEADER + b"1,a\x00b\r\n2,ok\r\n3,\x00\r\n", 1, ["invalid", "valid", "invalid"]),
}


def test_cli_subprocess_file_errors_and_a_ragged_file(
    tmp_path: Path, helpers: type[Helpers], small_xlsx_bytes: bytes
) -> None:
    cases = _inputs(tmp_path / "in", small_xlsx_bytes)
    (tmp_path / "ragged.csv").write_bytes(HOSTILE["ragged.csv"][0])
    commands: list[list[Any]] = [
        ["run", cases[n][0], "--dry-run", "--out", tmp_path / "out" / str(i), *cases[n][1]]
        for i, n in enumerate(SUBPROCESS_CASES)
    ]
    commands.append(["run", "gone.csv", "--dry-run"])  # missing, and no --out
    commands.append(["run", "ragged.csv", "--dry-run", "--out", "ragged-out"])
    before = sorted(p for p in tmp_path.rglob("*") if "ragged" not in str(p.relative_to(tmp_path)))
    *errors, missing, ragged = helpers.run_cli_many(commands, cwd=tmp_path)

    for name, result in zip(SUBPROCESS_CASES, errors):
        try:
            helpers.assert_one_line_error(result)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
        assert result.stdout == "", (name, result.stdout)
    assert "'Nope'" in errors[SUBPROCESS_CASES.index("unknown sheet")].stderr
    assert "gone.csv" in helpers.assert_one_line_error(missing)
    assert missing.stdout == ""

    # Arrow used to print "Exception ignored ... Traceback" on stderr for a ragged row.
    assert ragged.returncode == 1 and ragged.stderr == "", ragged.stderr
    records = helpers.read_csv_records(tmp_path / "ragged-out" / "results.csv")
    assert [r[3] for r in records[1:]] == ["valid", "invalid", "valid"]

    # Nothing written for the errors: no --out folders, no default "gone-latch/".
    after = sorted(p for p in tmp_path.rglob("*") if "ragged" not in str(p.relative_to(tmp_path)))
    assert after == before
    assert len(before) > 10  # the inputs themselves are listed


def test_every_file_error_exits_2_with_one_line(
    tmp_path: Path, small_xlsx_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _inputs(tmp_path / "in", small_xlsx_bytes)
    for i, (name, (path, options)) in enumerate(cases.items()):
        out = tmp_path / "out" / str(i)
        code = cli.main(["run", str(path), "--dry-run", "--out", str(out), *options])
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert code == 2, (name, code, captured.err)
        assert len(lines) == 1 and lines[0].startswith("batch-latch: error: "), (name, lines)
        assert "Traceback" not in captured.err
        assert captured.out == "", name
    # Nothing written: no --out folder, and no default "<stem>-latch" folder beside the input.
    assert not (tmp_path / "out").exists()
    assert [p.name for p in (tmp_path / "in").iterdir() if p.name.endswith("-latch")] == []


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_but_readable_files_run_without_noise(
    tmp_path: Path, helpers: type[Helpers], capfd: pytest.CaptureFixture[str], name: str
) -> None:
    """Ragged, Windows-1252 with undefined bytes, NULs: exit 0/1 and nothing on stderr.

    ``capfd`` sees the process's real stderr, where Arrow prints "Exception ignored".
    """
    data, expected_code, statuses = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(data)
    out = tmp_path / "out"
    code = cli.main(["run", str(path), "--dry-run", "--out", str(out), "--no-progress"])
    captured = capfd.readouterr()
    assert code == expected_code, captured.err
    assert captured.err == ""
    records = helpers.read_csv_records(out / "results.csv")
    assert records[0][:4] == ["row", "fusebillId", "geotabId", "status"]
    assert [r[3] for r in records[1:]] == statuses
    assert [r[0] for r in records[1:]] == [str(i + 2) for i in range(len(statuses))]
    if name == "ragged-1252.csv":
        assert records[1][2] == "café" and records[2][-1] == "naïve"
