"""Number formats against what Excel shows (values from Microsoft's format-code docs and
ECMA-376 §18.8.30/31 examples), including the cases a naive reader gets wrong."""

from __future__ import annotations

import pytest

from batch_latch.sheet import numfmt


@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        (12717595, "General", "12717595"),
        (12717595.000000002, "General", "12717595"),
        (99999999999, "General", "99999999999"),
        (123456789012, "General", "1.23457E+11"),
        (-1 / 3, "General", "-0.333333333"),  # 12 characters with the sign
        (-6.103515625e-05, "General", "-6.10352E-05"),  # never rounded to fit
        (1.234e-9, "General", "1.234E-09"),
        (909909, "0000000", "0909909"),
        (-5, "0000000;-0000000", "-0000005"),
        (-5, "0;(0)", "(5)"),
        (42, '"GT"0000', "GT0042"),
        (42, "\\G\\T0000", "GT0042"),
        (42, "[Red]0000", "0042"),
        (7, "000_)", "007 "),
        (12, "[$€-407]0.00", "€12.00"),
        (1234.5, "#,##0.00", "1,234.50"),
        (1234567, "0,", "1235"),
        (0.155, "0.0%", "15.5%"),
        (3, "0.0#", "3.0"),
        (12345, "0.00E+00", "1.23E+04"),
        (0, '0;-0;"zero"', "zero"),
        (150, "[>100]0;0", "150"),  # conditions: not modelled, General
    ],
)
def test_render(value: float, code: str, shown: str) -> None:
    assert numfmt.render(value, code) == shown


@pytest.mark.parametrize(
    ("code", "date"),
    [
        ("yyyy-mm-dd", True),
        ("[h]:mm:ss", True),
        ("d-mmm-yy", True),
        ('"day"0', False),
        ("0.00E+00", False),
        ("General", False),
        ("[Red]#,##0", False),
    ],
)
def test_is_date(code: str, date: bool) -> None:
    assert numfmt.is_date(code) is date


@pytest.mark.parametrize(
    ("serial", "date1904", "code", "iso"),
    [
        (45000, False, "yyyy-mm-dd", "2023-03-15"),
        (45000.5, False, "yyyy-mm-dd hh:mm", "2023-03-15 12:00"),  # [I29] no seconds named
        (0.75, False, "h:mm", "18:00"),  # [I29] h:mm hides the seconds
        (60, False, "yyyy-mm-dd", "1900-02-29"),  # Excel's phantom leap day
        (61, False, "yyyy-mm-dd", "1900-03-01"),
        (1, False, "yyyy-mm-dd", "1900-01-01"),
        (0, True, "yyyy-mm-dd", "1904-01-01"),
    ],
)
def test_serial_to_iso(serial: float, date1904: bool, code: str, iso: str) -> None:
    assert numfmt.serial_to_iso(serial, date1904, code) == iso


def test_builtin_ids() -> None:
    assert numfmt.format_code(49, {}) == "@"
    assert numfmt.format_code(14, {}) == "mm-dd-yy"
    assert numfmt.format_code(164, {164: "0000"}) == "0000"
    assert numfmt.is_date(numfmt.format_code(31, {}))  # East Asian date ids


# Met in real workbooks (public test corpora), rebuilt as single values.
@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        (3e-104, "General", "3E-104"),  # was "0"
        (8.881784197001252e-16, "General", "8.88178E-16"),  # a formula's rounding residue
        (4.094711806131958e231, "General", "4.0947E+231"),  # 11 characters
        (-1.2, "[Blue]General", "-1.2"),  # was the word "General"
        (12323, "[DBNum1][$-804]General", "12323"),
        (50, "[Red][=50]General;[Blue]000", "50"),  # a condition after a colour: General
        (1.1, "h:mm:ss", "02:24:00"),  # the time of day, as Excel shows it
        (1.1, "[h]:mm:ss", "26:24:00"),  # elapsed hours
    ],
)
def test_formats_met_in_real_files(value: float, code: str, shown: str) -> None:
    if numfmt.is_date(code):
        assert numfmt.serial_to_iso(value, False, code) == shown
    else:
        assert numfmt.render(value, code) == shown
