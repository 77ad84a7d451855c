"""Issue #29: a date or time shown by a later format section (picked by a condition or by
the sign) is a date or time, rendered as that section says, never the format's letters.

Where each expected text comes from:
- [POI] a workbook of the Apache POI test corpus: format
  ``[=0]?;[<4.1667][hh]:mm:ss;[hh]:mm`` on 0.29166666666666669, which Excel shows as
  ``07:00:00`` (the tool showed ``:mm:ss`` and latched it as a geotabId);
- [C4] the contract, "Input" (v4): ``[<1]h:mm;0`` shows ``18:00``; date and time formats
  show only the parts they name;
- [ENF] ExcelNumberFormat (Evaluator.GetSection): the second section, and the first one
  under a condition, take the number without its sign.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_latch.sheet import loader, numfmt, validate
from tests.sheet.test_xlsx_corpus import reader  # noqa: F401

POI = "[=0]?;[<4.1667][hh]:mm:ss;[hh]:mm"


@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        (0.2916666666666667, POI, "07:00:00"),  # [POI] the second section, elapsed hours
        (5, POI, "120:00"),  # [POI] the third section: no seconds named
        (0.75, "[<1]h:mm;0", "18:00"),  # [C4] a time under the first condition
        (-0.25, "[<1]h:mm;0", "06:00"),  # [ENF] the first conditional section: no sign
        (-0.5, "0;[h]:mm", "12:00"),  # [ENF] the negative section shows no sign itself
        (-1.25, "0;[h]:mm", "30:00"),  # elapsed hours past a day
        (-45000, "0;yyyy-mm-dd", "2023-03-15"),  # a date for negatives
        (-0.75, "0.00;h:mm AM/PM", "18:00"),  # ISO 24-hour clock, whatever AM/PM says
        (0.0001, "[<0.001]mm:ss.0;0.00", "00:08.6"),  # minutes, seconds, tenths
        (45000.5, "[>=1]yyyy-mm-dd;0.00", "2023-03-15"),  # [C4] the date hides the time
        (0, "0;-0;[h]:mm", "00:00"),  # the zero section
    ],
)
def test_section_picked_by_condition_or_sign_shows_its_own_kind(
    value: float, code: str, shown: str
) -> None:
    assert numfmt.render(value, code) == shown


@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        (0.2916666666666667, POI, "07:00:00"),
        (0.75, "[<1]h:mm;0", "18:00"),
        (-0.5, "0;[h]:mm", "12:00"),
    ],
)
def test_time_from_a_later_section_is_never_an_id(value: float, code: str, shown: str) -> None:
    assert numfmt.show_number(value, code) == (shown, f"date or time {shown}")


def test_date_from_a_later_section_follows_the_workbook_calendar() -> None:
    assert numfmt.render(1, "[<2]yyyy-mm-dd;0", date1904=True) == "1904-01-02"
    assert numfmt.render(1, "[<2]yyyy-mm-dd;0", date1904=False) == "1900-01-01"


@pytest.mark.parametrize(
    ("serial", "code", "shown"),
    [
        (0.75, "h:mm", "18:00"),  # [C4] h:mm names no seconds
        (0.2916666666666667, "[hh]:mm", "07:00"),
        (1.5, "[h]:mm", "36:00"),
        (0.75, "hh", "18"),
        (0.05, "[mm]", "72"),  # elapsed minutes alone are minutes, not a month
        (45000.75, "yyyy-mm-dd h:mm", "2023-03-15 18:00"),
    ],
)
def test_times_show_only_the_parts_named(serial: float, code: str, shown: str) -> None:
    assert numfmt.serial_to_iso(serial, False, code) == shown


def test_a_later_time_section_makes_the_format_show_dates() -> None:
    assert numfmt.shows_dates(POI) and numfmt.shows_dates("0;[h]:mm")
    assert not numfmt.shows_dates('[<100000]00000;0;"zero"')


# --- through the reader and the loader -------------------------------------------------------


def _book(tmp_path: Path, rows: list[tuple[int, object, str, object, str]]) -> Path:
    """Rows of (fusebillId, geotabId, its format, Notes, its format), written by XlsxWriter
    as number cells with those formats ("" for none)."""
    path = tmp_path / "sections.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("S")
    sheet.write_row(0, 0, ["fusebillId", "geotabId", "Notes"])
    for r, (fusebill, geotab, geotab_code, notes, notes_code) in enumerate(rows, start=1):
        sheet.write(r, 0, fusebill)
        for col, value, code in ((1, geotab, geotab_code), (2, notes, notes_code)):
            fmt = book.add_format({"num_format": code}) if code else None
            sheet.write(r, col, value, fmt)
    book.close()
    return path


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
def test_time_in_a_later_section_is_invalid_in_an_id_column(tmp_path: Path) -> None:
    path = _book(
        tmp_path,
        [
            (1000003, 0.2916666666666667, POI, "n", ""),  # [POI]
            (1000004, -0.5, "0;[h]:mm", "n", ""),
            (1000005, 0.75, "[<1]h:mm;0", "n", ""),
            (1000006, 42, "[<1]h:mm;0", "n", ""),  # the number section: an id
        ],
    )
    sheet = loader.load(path)
    assert sheet.geotab.to_pylist() == ["07:00:00", "12:00", "18:00", "42"]
    verdicts = validate.validate(sheet)
    assert verdicts.status.to_pylist() == ["invalid", "invalid", "invalid", "valid"]
    assert verdicts.message.to_pylist()[:3] == [
        "B2: date or time 07:00:00",
        "B3: date or time 12:00",
        "B4: date or time 18:00",
    ]


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
def test_time_in_a_later_section_is_carried_as_shown_elsewhere(tmp_path: Path) -> None:
    path = _book(
        tmp_path,
        [
            (1000003, "G1", "", 0.2916666666666667, POI),
            (1000004, "G2", "", 0.75, "[<1]h:mm;0"),
            (1000005, "G3", "", -0.5, "0;[h]:mm"),
            (1000006, "G4", "", 7, "[<1]h:mm;0"),
        ],
    )
    sheet = loader.load(path)
    assert sheet.extras["Notes"].to_pylist() == ["07:00:00", "18:00", "12:00", "7"]
    assert validate.validate(sheet).status.to_pylist() == ["valid"] * 4


# --- never the format's letters ----------------------------------------------------------------

_NUMBER_SECTIONS = ["0", "#,##0.00", '"GT"0000', "0.0%", "# ?/?", "0.00E+00", "?", "General"]
_DATE_SECTIONS = ["yyyy-mm-dd", "d-mmm-yy", "dd/mm/yyyy", "yyyy-mm-dd hh:mm", "m/d/yy h:mm"]
_TIME_SECTIONS = [
    "h:mm",
    "hh:mm:ss",
    "[h]:mm",
    "[hh]:mm:ss",
    "[mm]:ss",
    "[ss]",
    "mm:ss.0",
    "h:mm AM/PM",
    'h"h"mm',  # a quoted literal that is a date letter: allowed in the output
]
_CONDITIONS = ["", "", "[<1]", "[>=100]", "[=0]", "[<>5]", "[<4.1667]", "[<=-2]"]
_COLOURS = ["", "", "[Red]", "[Blue]"]


@st.composite
def _formats(draw: st.DrawFn) -> str:
    """One to three numeric sections mixing number, date and time sections, each perhaps
    under a condition (the first two) and a colour."""
    count = draw(st.integers(1, 3))
    sections = []
    for index in range(count):
        body = draw(st.sampled_from(_NUMBER_SECTIONS + _DATE_SECTIONS + _TIME_SECTIONS))
        condition = draw(st.sampled_from(_CONDITIONS)) if index < 2 else ""
        sections.append(draw(st.sampled_from(_COLOURS)) + condition + body)
    return ";".join(sections)


def _unquoted_tokens(code: str) -> set[str]:
    """The format's date and time letters as it writes them (``yyyy``, ``mm``, ``[hh]``'s
    ``hh``...), outside quotes, escapes and the other brackets, and ``General``/``AM/PM``."""
    bare = re.sub(r'"[^"]*"|\\.|_.|\*.|\[(?![hms]+\])[^\]]*\]', "", code, flags=re.IGNORECASE)
    bare = re.sub(r"(?i)general|am/pm|a/p", "", bare)
    return {run.lower() for run in re.findall(r"(?i)y+|m+|d+|h+|s+", bare)}


_VALUES = st.one_of(
    st.sampled_from([0.0, 0.2916666666666667, -0.5, 0.75, 5.0, -45000.0, 45000.5, 1e-4]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=400, deadline=None)
@given(code=_formats(), value=_VALUES, date1904=st.booleans())
def test_never_shows_the_format_letters(code: str, value: float, date1904: bool) -> None:
    shown = numfmt.render(value, code, date1904).lower()
    leaked = {token for token in _unquoted_tokens(code) if token in shown}
    assert not leaked, (code, value, shown)
