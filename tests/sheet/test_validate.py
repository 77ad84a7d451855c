"""Every rule of the contract's Validation section, with expectations written out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batch_latch.sheet import loader
from batch_latch.sheet.loader import Sheet
from batch_latch.sheet.validate import Verdicts, validate
from batch_latch.vocab import ErrorKey, is_error_key

MAX = 9223372036854775807


def make_sheet(pairs: list[tuple[str, str]], first_row: int = 2) -> Sheet:
    return Sheet(
        path=Path("in.csv"),
        rows=pa.array(range(first_row, first_row + len(pairs)), type=pa.int64()),
        fusebill=pa.array([f for f, _ in pairs], type=pa.string()),
        geotab=pa.array([g for _, g in pairs], type=pa.string()),
        fusebill_header="fusebillId",
        geotab_header="geotabId",
        extras={},
    )


def rows_of(verdicts: Verdicts) -> list[dict[str, Any]]:
    return [
        {
            "row": r,
            "fusebill": f,
            "geotab": g,
            "id": i,
            "status": s,
            "message": m,
            "key": k,
        }
        for r, f, g, i, s, m, k in zip(
            verdicts.rows.to_pylist(),
            verdicts.fusebill.to_pylist(),
            verdicts.geotab.to_pylist(),
            verdicts.fusebill_id.to_pylist(),
            verdicts.status.to_pylist(),
            verdicts.message.to_pylist(),
            verdicts.error_key.to_pylist(),
        )
    ]


def one(fusebill: str, geotab: str = "G-1") -> dict[str, Any]:
    [row] = rows_of(validate(make_sheet([(fusebill, geotab)])))
    return row


# --- fusebillId -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("1", 1),
        ("12717595", 12717595),
        ("12717595.0", 12717595),
        ("007", 7),
        ("0000000000000000000000001", 1),
        ("  42  ", 42),
        ("\t42\r\n", 42),
        ("\u00a042\u3000", 42),  # no-break and ideographic spaces are whitespace too
        ("9223372036854775807", MAX),
        ("09223372036854775807", MAX),
        ("9223372036854775807.0", MAX),
        ("9223372036854775806", MAX - 1),
        ("1000000000000000000", 10**18),
        ("8999999999999999999", 8999999999999999999),
        ("10.0", 10),
        ("0010.0", 10),
    ],
)
def test_valid_fusebill_ids(cell: str, value: int) -> None:
    row = one(cell)
    assert row["status"] == "valid", row
    assert row["id"] == value
    assert row["fusebill"] == str(value)  # normalised: trimmed, no ".0", no leading zeros
    assert row["message"] == "" and row["key"] == ""


@pytest.mark.parametrize(
    "cell",
    [
        "",
        "   ",
        "0",
        "000",
        "0.0",
        "00.0",
        "9223372036854775808",
        "9223372036854775808.0",
        "9999999999999999999",
        "10000000000000000000",
        "99999999999999999999999999",
        "+5",
        "-5",
        "-0",
        "1_000",
        "1,000",
        "1 000",
        "1.000",
        "1.27E+07",
        "1.27e7",
        "1e3",
        "1E3",
        "\u0663",  # Arabic-Indic three
        "\u0661\u0662",
        "\uff11\uff12",  # fullwidth 12
        "\u00b2",  # superscript two: str.isdigit() says yes
        "1.5",
        "1.00",
        "1.",
        ".0",
        "1.0.0",
        "0x1F",
        "1F",
        "abc",
        "12 34",
        "1\t2",
        "1\n2",
        "5\x00",
        "NaN",
        "inf",
        "١٢٣",
    ],
)
def test_invalid_fusebill_ids(cell: str) -> None:
    row = one(cell)
    assert row["status"] == "invalid", row
    assert row["key"] == "invalid_fusebill_id"
    assert row["id"] is None
    assert row["fusebill"] == cell  # the raw text, untouched
    assert row["geotab"] == "G-1"
    assert row["message"]


def test_fusebill_messages_say_why() -> None:
    assert "empty" in one("  ")["message"]
    assert "range" in one("9223372036854775808")["message"]
    assert "range" in one("0")["message"]
    assert "whole number" in one("1.5")["message"]


# --- geotabId -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "kept"),
    [
        ("0909909", "0909909"),
        ("  G-ACME-001 ", "G-ACME-001"),
        ("\tab\r\n", "ab"),  # trimming removes surrounding whitespace, even tabs
        ("a  b", "a  b"),  # inner spaces stay
        ("MiXeD cAsE", "MiXeD cAsE"),
        ("Zürich ✓ 東京", "Zürich ✓ 東京"),
        ('=HYPERLINK("x")', '=HYPERLINK("x")'),
        ("'quoted'", "'quoted'"),
        ("x" * 255, "x" * 255),
        (" " + "x" * 255 + " ", "x" * 255),  # 255 after trimming
        ("é" * 255, "é" * 255),  # characters, not bytes
        ("\U0001f600" * 255, "\U0001f600" * 255),
    ],
)
def test_valid_geotab_ids(cell: str, kept: str) -> None:
    row = one("1", cell)
    assert row["status"] == "valid", row
    assert row["geotab"] == kept


@pytest.mark.parametrize(
    "cell",
    [
        "",
        "   ",
        "x" * 256,
        "é" * 256,
        " " + "x" * 256,
        "a\tb",
        "a\nb",
        "a\rb",
        "a\x00b",
        "\x00",
        "a\x1bb",
        "a\x7fb",
        "a\x85b",  # NEL (U+0085) is a C1 control
        "a\x9fb",
    ],
)
def test_invalid_geotab_ids(cell: str) -> None:
    row = one("1", cell)
    assert row["status"] == "invalid", row
    assert row["key"] == "invalid_geotab_id"
    assert row["geotab"] == cell  # raw text for invalid rows
    assert row["fusebill"] == "1"
    assert row["message"]


def test_geotab_messages_say_why() -> None:
    assert "empty" in one("1", "")["message"]
    assert "256" in one("1", "x" * 256)["message"]
    assert "control" in one("1", "a\x00b")["message"]


def test_both_cells_invalid() -> None:
    row = one("-1", "")
    assert row["status"] == "invalid"
    assert row["key"] == "invalid_ids"
    assert "fusebillId" in row["message"] and "geotabId" in row["message"]


# --- duplicates, conflicts, shared geotabIds ------------------------------------------------


def statuses(pairs: list[tuple[str, str]], **options: Any) -> list[str]:
    return [str(v) for v in validate(make_sheet(pairs), **options).status.to_pylist()]


def test_duplicate_names_the_first_row() -> None:
    verdicts = rows_of(validate(make_sheet([("1", "A"), ("2", "B"), ("1", "A"), ("1", "A")])))
    assert [v["status"] for v in verdicts] == ["valid", "valid", "duplicate", "duplicate"]
    for later in verdicts[2:]:
        assert later["key"] == "duplicate_row"
        assert "row 2" in later["message"]
        assert later["id"] == 1  # still a well-formed pair
    assert verdicts[0]["message"] == ""


def test_duplicate_after_normalising() -> None:
    # "007" and "7.0" are the fusebillId 7; " A " is the geotabId "A".
    verdicts = rows_of(validate(make_sheet([("007", " A "), ("7.0", "A"), ("7", "A  ")])))
    assert [v["status"] for v in verdicts] == ["valid", "duplicate", "duplicate"]
    assert [v["fusebill"] for v in verdicts] == ["7", "7", "7"]
    assert [v["geotab"] for v in verdicts] == ["A", "A", "A"]


def test_geotab_ids_are_case_sensitive() -> None:
    # Kept exactly: "a" and "A" are different geotabIds, so this is a conflict, not a duplicate.
    assert statuses([("1", "a"), ("1", "A")]) == ["invalid", "invalid"]


def test_conflict_marks_every_row_and_names_them() -> None:
    pairs = [("5", "A"), ("6", "X"), ("5", "B"), ("5", "A"), ("5", "C")]
    verdicts = rows_of(validate(make_sheet(pairs, first_row=10)))
    assert [v["status"] for v in verdicts] == ["invalid", "valid", "invalid", "invalid", "invalid"]
    for v in (verdicts[0], verdicts[2], verdicts[3], verdicts[4]):
        assert v["key"] == "conflicting_geotab_ids"
        for row in ("10", "12", "13", "14"):
            assert row in v["message"], v["message"]
        assert "11" not in v["message"]


def test_pair_invalid_rows_show_raw_text() -> None:
    # Invalid rows show the raw cell text, whatever made them invalid (contract, Reports).
    pairs = [(" 5.0 ", " A "), ("005", "B"), ("6", " S "), ("7.0", "S"), ("8", "ok")]
    verdicts = rows_of(validate(make_sheet(pairs)))
    assert [v["status"] for v in verdicts] == ["invalid"] * 4 + ["valid"]
    assert [(v["fusebill"], v["geotab"]) for v in verdicts[:4]] == pairs[:4]
    assert [v["id"] for v in verdicts] == [None, None, None, None, 8]


def test_conflict_duplicates_are_invalid_too() -> None:
    # Row 4 repeats row 2's pair exactly; it is part of the conflict, not a duplicate.
    assert statuses([("5", "A"), ("5", "B"), ("5", "A")]) == ["invalid"] * 3


def test_shared_geotab_id() -> None:
    pairs = [("1", "S"), ("2", "S"), ("3", "T")]
    verdicts = rows_of(validate(make_sheet(pairs, first_row=20)))
    assert [v["status"] for v in verdicts] == ["invalid", "invalid", "valid"]
    assert verdicts[0]["key"] == verdicts[1]["key"] == "shared_geotab_id"
    for v in verdicts[:2]:
        assert "--allow-shared-geotab-id" in v["message"]
        assert "20" in v["message"] and "21" in v["message"] and "22" not in v["message"]


def test_shared_geotab_id_allowed() -> None:
    pairs = [("1", "S"), ("2", "S"), ("1", "S"), ("3", "T")]
    assert statuses(pairs, allow_shared_geotab_id=True) == [
        "valid",
        "valid",
        "duplicate",
        "valid",
    ]
    assert statuses(pairs) == ["invalid", "invalid", "invalid", "valid"]


def test_conflict_and_shared_together() -> None:
    # fusebillId 1 has two geotabIds (conflict); geotabId A also goes to fusebillId 2.
    assert statuses([("1", "A"), ("1", "B"), ("2", "A")]) == ["invalid"] * 3
    got = statuses([("1", "A"), ("1", "B"), ("2", "A")], allow_shared_geotab_id=True)
    assert got == ["invalid", "invalid", "valid"]
    # The shared row's message names the other row with its geotabId, though that row is
    # invalid for its own reason (the conflict).
    verdicts = rows_of(validate(make_sheet([("1", "A"), ("1", "B"), ("2", "A")], first_row=30)))
    assert verdicts[0]["key"] == verdicts[1]["key"] == "conflicting_geotab_ids"
    assert verdicts[2]["key"] == "shared_geotab_id"
    assert "30" in verdicts[2]["message"] and "32" in verdicts[2]["message"]


def test_invalid_cells_take_no_part_in_pair_rules() -> None:
    # An invalid row cannot be "the first row" of a duplicate, nor make a conflict.
    assert statuses([("abc", "A"), ("1", "A")]) == ["invalid", "valid"]
    assert statuses([("1", "A"), ("1", "")]) == ["valid", "invalid"]
    assert statuses([("1", "A"), ("1", "A\x00")]) == ["valid", "invalid"]
    assert statuses([("1", "A"), ("0", "A")]) == ["valid", "invalid"]


def test_many_conflicting_rows_message_is_bounded() -> None:
    pairs = [("9", f"G{i}") for i in range(50)]
    verdicts = validate(make_sheet(pairs))
    assert set(verdicts.status.to_pylist()) == {"invalid"}
    message = verdicts.message.to_pylist()[0]
    assert len(message) < 300 and "more" in message


def test_counts() -> None:
    verdicts = validate(make_sheet([("1", "A"), ("1", "A"), ("x", "B"), ("2", "C")]))
    assert verdicts.counts() == {"valid": 2, "duplicate": 1, "invalid": 1}
    assert len(verdicts) == 4


# --- through a real file --------------------------------------------------------------------


def test_sample_file_verdicts(helpers: Any) -> None:
    """The sample's Notes column says what each row should get; check it row by row."""
    verdicts = rows_of(validate(loader.load(helpers.SAMPLE_CSV)))
    by_row = {v["row"]: v for v in verdicts}
    expected = {
        2: ("valid", "12717595", "0909909"),
        3: ("valid", "671201", "1234"),
        4: ("valid", "1000001", "G-ACME-001"),
        5: ("valid", "1000002", "0001234"),
        7: ("valid", "1000003", "0042"),
        8: ("valid", "1000004", "ACME West"),
        9: ("valid", "12345", "7777777"),
        10: ("invalid", "1,000,005", "5555"),
        11: ("invalid", "1.27E+07", "6666"),
        12: ("invalid", "-1000006", "8888"),
        13: ("invalid", "", "9999"),
        14: ("invalid", "1000010", ""),
        15: ("duplicate", "1000001", "G-ACME-001"),
        16: ("invalid", "1000007", "GT-7A"),
        17: ("invalid", "1000007", "GT-7B"),
        18: ("invalid", "1000008", "SHARED-01"),
        19: ("invalid", "1000009", "SHARED-01"),
        20: ("valid", "1000011", '=HYPERLINK("x")'),
        21: ("invalid", "1000012", "G" * 256),
    }
    assert sorted(by_row) == sorted(expected)  # row 6 is blank and skipped
    for row, (status, fusebill, geotab) in expected.items():
        got = by_row[row]
        assert (got["status"], got["fusebill"], got["geotab"]) == (status, fusebill, geotab), row
    assert "row 4" in by_row[15]["message"]
    assert "16" in by_row[17]["message"] and "17" in by_row[16]["message"]


def test_xlsx_numbers_validate_like_text(tmp_path: Path, helpers: Any) -> None:
    path = helpers.write_xlsx(
        tmp_path / "in.xlsx",
        {
            "S": {
                1: ["fusebillId", "geotabId"],
                2: [12717595.0, "0909909"],
                3: [12717595, "0909909"],  # same pair once Excel's float is normalised
                4: [1.5, "x"],
                5: [0, "y"],
            }
        },
    )
    got = validate(loader.load(path)).status.to_pylist()
    assert got == ["valid", "duplicate", "invalid", "invalid"]


def test_every_key_validation_gives_is_listed() -> None:
    pairs = [
        ("1001", "G-1"),
        ("1001", "G-1"),  # duplicate_row
        ("x", "G-2"),  # invalid_fusebill_id
        ("1002", ""),  # invalid_geotab_id
        ("y", ""),  # invalid_ids
        ("1003", "G-3"),
        ("1003", "G-4"),  # conflicting_geotab_ids
        ("1004", "G-5"),
        ("1005", "G-5"),  # shared_geotab_id
    ]
    keys = set(validate(make_sheet(pairs)).error_key.to_pylist())
    assert keys == {
        ErrorKey.NONE,
        ErrorKey.DUPLICATE_ROW,
        ErrorKey.INVALID_FUSEBILL_ID,
        ErrorKey.INVALID_GEOTAB_ID,
        ErrorKey.INVALID_IDS,
        ErrorKey.CONFLICTING_GEOTAB_IDS,
        ErrorKey.SHARED_GEOTAB_ID,
    }
    assert all(is_error_key(k) for k in keys)
