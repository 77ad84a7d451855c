"""Excel number formats: a number cell's value as the text Excel shows for it.

A spreadsheet stores ``909909`` and shows ``0909909`` because the cell's format is
``0000000``; ops mean what they see, so the loader renders every number cell with its
format. Covered: General (as a standard-width cell shows it: at most 11 characters,
scientific notation for 12 or more digits), ``0``/``#``/``?`` placeholders with literals
between them, decimals, thousands separators, ``%``, simple scientific ``0.00E+00``,
up to four ``;`` sections, ``"text"`` and ``\\x`` literals, ``_x`` spacing, ``*x`` fill and
``[Red]``/``[$-409]`` brackets, conditions (``[<100000]00000;0``) and fractions. Each
section has its own kind (:class:`SectionKind`): a date or time section is shown as ISO
8601 whichever section it is, also when a condition or the sign picks it
(``[=0]?;[<4.1667][hh]:mm:ss;[hh]:mm`` on 0.2917 shows ``07:00:00``), so a format's letters
are never shown as a value.

Sources (read, not copied): ECMA-376 Part 1 §18.8.30 (built-in format ids) and §18.8.31
(format codes); Microsoft support "Number format codes" and "Available number formats in
Excel" (General uses scientific notation for numbers of 12 or more digits).
"""

from __future__ import annotations

import enum
import functools
import math
import re
from dataclasses import dataclass

from batch_latch.sheet import numfmt_dates, numfmt_parts

#: ECMA-376 §18.8.30: formats every workbook has without declaring them.
BUILTIN: dict[int, str] = {
    0: "General",
    1: "0",
    2: "0.00",
    3: "#,##0",
    4: "#,##0.00",
    9: "0%",
    10: "0.00%",
    11: "0.00E+00",
    12: "# ?/?",
    13: "# ??/??",
    14: "mm-dd-yy",
    15: "d-mmm-yy",
    16: "d-mmm",
    17: "mmm-yy",
    18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM",
    20: "h:mm",
    21: "h:mm:ss",
    22: "m/d/yy h:mm",
    37: "#,##0 ;(#,##0)",
    38: "#,##0 ;[Red](#,##0)",
    39: "#,##0.00;(#,##0.00)",
    40: "#,##0.00;[Red](#,##0.00)",
    45: "mm:ss",
    46: "[h]:mm:ss",
    47: "mmss.0",
    48: "##0.0E+0",
    49: "@",
}
#: Ids Excel reserves for locale-specific dates (East Asian calendars): dates, whatever code.
_LOCALE_DATE_IDS = frozenset(range(27, 37)) | frozenset(range(50, 59))
_GENERAL_WIDTH = 11  # characters a standard-width column shows in General

_QUOTED = re.compile(r'"[^"]*"|\\.|_.|\*.')
_BRACKET = re.compile(r"\[[^\]]*\]")
_DATE_LETTERS = re.compile(r"[ymdhs]", re.IGNORECASE)
_ELAPSED = re.compile(r"\[(h+|m+|s+)\]", re.IGNORECASE)
_CONDITION = re.compile(r"\[[<>=]")


def format_code(num_fmt_id: int, custom: dict[int, str]) -> str:
    """The code for a style's ``numFmtId``: the workbook's own, else the built-in one."""
    if num_fmt_id in custom:
        return custom[num_fmt_id]
    if num_fmt_id in _LOCALE_DATE_IDS:
        return "yyyy-mm-dd"
    return BUILTIN.get(num_fmt_id, "General")


class SectionKind(enum.Enum):
    """What one section of a format shows a number as."""

    NUMBER = "number"  # placeholders, literals, General, fractions...
    DATE = "date"  # a date or a time (``yyyy-mm-dd``, ``h:mm``, elapsed ``[hh]:mm:ss``)


#: The problem that makes a number shown as a date or time unfit to be an id.
DATE_PROBLEM = "date or time "


@functools.lru_cache(maxsize=1024)
def section_kind(section: str) -> SectionKind:
    """A date or time section: an elapsed ``[h]``/``[mm]``/``[ss]``, or y, m, d, h or s
    outside quotes, escapes and brackets (``General`` is not one)."""
    if _ELAPSED.search(section):
        return SectionKind.DATE
    bare = _BRACKET.sub("", _QUOTED.sub("", section))
    bare = re.sub("general", "", bare, flags=re.IGNORECASE)
    return SectionKind.DATE if _DATE_LETTERS.search(bare) else SectionKind.NUMBER


def is_date(code: str) -> bool:
    """The format's first section is a date or time."""
    return section_kind(split_sections(code)[0]) is SectionKind.DATE


@functools.lru_cache(maxsize=1024)
def shows_dates(code: str) -> bool:
    """Some section numbers can take is a date or time: the first one, or a later one a
    condition or the sign picks (``[<1]h:mm;0``, ``0;[h]:mm``)."""
    return SectionKind.DATE in _parsed(code)[2]


def is_general(code: str) -> bool:
    return code.strip().lower() in ("general", "", "@")


def split_sections(code: str) -> list[str]:
    """Split on ``;`` that is not inside quotes, an escape or brackets."""
    sections, current, i = [], [], 0
    while i < len(code):
        char = code[i]
        if char == '"':
            end = code.find('"', i + 1)
            end = len(code) - 1 if end < 0 else end
            current.append(code[i : end + 1])
            i = end + 1
            continue
        if char in "\\_*" and i + 1 < len(code):
            current.append(code[i : i + 2])
            i += 2
            continue
        if char == "[":
            end = code.find("]", i)
            end = len(code) - 1 if end < 0 else end
            current.append(code[i : end + 1])
            i = end + 1
            continue
        if char == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    sections.append("".join(current))
    return sections


def general(value: float) -> str:
    """What a standard-width General cell shows: ``12717595``, ``0.3``, ``1.23457E+11``.

    Excel keeps 11 characters (12 with a minus sign) and never rounds a fixed-point number
    to fit when that would drop significant digits: it switches to 6-digit scientific
    instead (``-6.10352E-05``, not ``-0.00006104``). The rules follow the General
    algorithm of SheetJS's SSF (read, not copied), which matches Excel's own output.
    """
    if value == 0:
        return "0"
    width = _GENERAL_WIDTH + (1 if value < 0 else 0)
    power = math.floor(math.log10(abs(value)))
    if -4 <= power <= -1:
        text = _significant(value, 10 + power)
    elif abs(power) <= 9:
        text = _trim(f"{value:.12f}")
        if len(text) > width:
            text = _significant(value, 10)
        if len(text) > width:
            text = _scientific(value, 5)
    elif power == 10:
        text = _trim(f"{value:.10f}"[:12])
    elif power < 0:  # below 1E-10 fixed point shows only zeros: scientific
        text = _scientific(value, 5)
    else:
        text = _trim(f"{value:.11f}")
        if len(text) > width:
            text = _significant(value, 6)
    decimals = 4
    while len(text) > width and "E" in text and decimals >= 0:  # a 3-digit exponent
        text, decimals = _scientific(value, decimals), decimals - 1
    return text


def _significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, like JavaScript's ``toPrecision``."""
    power = math.floor(math.log10(abs(value)))
    if -7 < power < digits:
        return _trim(f"{value:.{max(0, digits - 1 - power)}f}")
    return _scientific(value, digits - 1)


def _scientific(value: float, decimals: int) -> str:
    mantissa, exponent = f"{value:.{decimals}e}".split("e")
    return f"{_trim(mantissa)}E{exponent[0]}{int(exponent[1:]):02d}"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def render(value: float, code: str, date1904: bool = False) -> str:
    """``value`` as Excel shows it with format ``code``."""
    return show_number(value, code, date1904)[0]


class _Form(enum.Enum):
    """How a number came out: which rule decides whether it can be an id."""

    GENERAL = "general"  # may be scientific or rounded: compared with what is stored
    NUMBER = "number"  # a number section's placeholders
    DATE = "date"  # a date or time: never an id


def show_number(value: float, code: str, date1904: bool = False) -> tuple[str, str]:
    """(what Excel shows, why that cannot be an id or ""): a format out of reach, a date
    or time, digits past Excel's 15, or General's scientific or rounded forms."""
    value = float(value)
    reason = numfmt_parts.unsupported(code)
    if is_general(code):
        text, form = general(value), _Form.GENERAL
    else:
        text, form = _render_sections(value, code, date1904)
    if reason is not None:
        return text, f"number format {code!r} is not supported ({reason}): store ids as text"
    if form is _Form.DATE:
        return text, DATE_PROBLEM + text
    return text, numfmt_parts.id_problem(value, text, form is _Form.GENERAL)


def _render_sections(value: float, code: str, date1904: bool) -> tuple[str, _Form]:
    """(the text, how it came out) for the section ``value`` takes, rendered as that
    section's own kind: a time picked by a condition is a time, not a number."""
    sections, conditions, kinds = _parsed(code)
    pick = numfmt_parts.choose(conditions, value)
    if pick is None:
        return general(value), _Form.GENERAL
    index, unsigned = pick
    if kinds[index] is SectionKind.DATE:
        # A section that shows the sign itself takes the number without it (as numbers do).
        serial = abs(value) if unsigned else value
        return serial_to_iso(serial, date1904, sections[index]), _Form.DATE
    text = _render_section(sections[index], abs(value))
    if text is None:
        return general(value), _Form.GENERAL
    if value < 0 and not unsigned and _has_nonzero_digit(text):
        text = "-" + text
    return text, _Form.NUMBER


@functools.lru_cache(maxsize=1024)
def _parsed(
    code: str,
) -> tuple[list[str], list[numfmt_parts.Condition | None], tuple[SectionKind, ...]]:
    """The sections numbers take, their conditions and their kinds (once per format)."""
    sections = numfmt_parts.numeric_sections(split_sections(code))
    kinds = tuple(section_kind(s) for s in sections)
    return sections, [numfmt_parts.condition(s) for s in sections], kinds


def _has_nonzero_digit(text: str) -> bool:
    return any(c in "123456789" for c in text)


@functools.lru_cache(maxsize=1024)
def _tokens(section: str) -> list[tuple[str, str]]:
    """(kind, text): kind is ``lit`` (shown as is), ``ph`` (0 # ?), ``G`` (General), or a
    symbol ``.,%E@/``. Cached: callers copy, never change, the list."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(section):
        char = section[i]
        if char == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            out.append(("lit", section[i + 1 : end]))
            i = end + 1
        elif char == "\\" and i + 1 < len(section):
            out.append(("lit", section[i + 1]))
            i += 2
        elif char == "_" and i + 1 < len(section):
            out.append(("lit", " "))  # "_)" leaves the width of ")" blank
            i += 2
        elif char == "*" and i + 1 < len(section):
            i += 2  # fill character: repeats to the cell's width, nothing at minimum width
        elif char == "[":
            end = section.find("]", i)
            end = len(section) if end < 0 else end
            inner = section[i + 1 : end]
            if inner.startswith("$"):  # [$€-407]: a currency symbol, then a locale
                out.append(("lit", inner[1:].split("-")[0]))
            i = end + 1
        elif section[i : i + 7].lower() == "general":  # [Blue]General, "x"General
            out.append(("G", "General"))
            i += 7
        elif char in "0#?":
            out.append(("ph", char))
            i += 1
        elif char in "Ee" and section[i + 1 : i + 2] in ("+", "-"):
            out.append(("E", section[i + 1]))
            i += 2
        else:
            out.append((char if char in ".,%@/" else "lit", char))
            i += 1
    return out


@dataclass(frozen=True)
class _Layout:
    """What a section's tokens say once, whatever the value (cached per section)."""

    tokens: list[tuple[str, str]]
    kinds: list[str]
    int_ph: list[int]
    dec_ph: list[int]
    grouping: bool
    shift: int  # powers of ten: +2 per %, -3 per scaling comma
    fraction: numfmt_parts.FractionShape | None


@functools.lru_cache(maxsize=1024)
def _layout(section: str) -> _Layout:
    tokens = _tokens(section)
    kinds = [k for k, _ in tokens]
    int_end = kinds.index(".") if "." in kinds else len(tokens)
    phs = [i for i, k in enumerate(kinds) if k == "ph"]
    last_ph = phs[-1] if phs else -1
    # Commas right after the last placeholder divide by 1,000 each (``#,##0,``,
    # ``0.0,,"M"``; ExcelNumberFormat's GetTrailingCommasDivisor reads them the same way).
    scale = _commas_at(kinds, last_ph + 1) if phs else 0
    first_ph = phs[0] if phs else 0
    return _Layout(
        tokens=tokens,
        kinds=kinds,
        int_ph=[i for i in phs if i < int_end],
        dec_ph=[i for i in phs if i > int_end],
        grouping=any(k == "," for k in kinds[first_ph : min(int_end, last_ph)]),
        shift=2 * kinds.count("%") - 3 * scale,
        fraction=numfmt_parts.fraction_shape(tokens) if "/" in kinds and phs else None,
    )


def _render_section(section: str, value: float) -> str | None:
    """One section for a non-negative value; None when the section is not modelled."""
    lay = _layout(section)
    tokens, kinds = lay.tokens, lay.kinds
    if "ph" not in kinds:
        if "G" in kinds:
            return "".join(general(value) if k == "G" else t for k, t in tokens if k != ",")
        return "".join(t for k, t in tokens if k in ("lit", ".", "%", "/"))
    if "/" in kinds:
        return None if lay.fraction is None else numfmt_parts.fraction(lay.fraction, value)
    if "E" in kinds:
        return _render_scientific(tokens, value)
    if not lay.dec_ph and not lay.shift and value.is_integer() and value < 1e15:
        whole, fraction = str(int(value)), ""  # the usual id: no rounding to do
    else:
        # Excel's 15 digits first, then % and scaling exactly, then the format's decimals.
        exact = numfmt_parts.excel_decimal(value).scaleb(lay.shift)
        rounded = numfmt_parts.rounded(exact, len(lay.dec_ph))
        whole, _, fraction = f"{rounded:f}".partition(".")
    texts = [t for _, t in tokens]
    _fill_integer(texts, lay.int_ph, whole.lstrip("0"), lay.grouping)
    _fill_decimals(texts, lay.dec_ph, fraction.ljust(len(lay.dec_ph), "0"))
    # Commas are grouping or scaling marks, never shown as themselves.
    return "".join(t for t, k in zip(texts, kinds) if k != ",")


def _commas_at(kinds: list[str], start: int) -> int:
    count = 0
    while start + count < len(kinds) and kinds[start + count] == ",":
        count += 1
    return count


def _fill_integer(texts: list[str], positions: list[int], digits: str, grouping: bool) -> None:
    """Digits right to left into the placeholders; extra digits go to the first one."""
    if not positions:
        return
    if grouping:
        minimum = sum(1 for p in positions if texts[p] == "0")
        padded = digits.rjust(minimum, "0") if digits or minimum else ""
        grouped = f"{int(padded):,}" if padded else ""
        for p in positions:
            texts[p] = ""
        texts[positions[-1]] = grouped
        return
    remaining = digits
    for index, p in enumerate(reversed(positions)):
        placeholder = texts[p]
        last = index == len(positions) - 1
        if remaining:
            texts[p] = remaining if last else remaining[-1]
            remaining = "" if last else remaining[:-1]
        else:
            texts[p] = {"0": "0", "?": " "}.get(placeholder, "")


def _fill_decimals(texts: list[str], positions: list[int], digits: str) -> None:
    """Left to right; trailing zeros under ``#`` vanish and under ``?`` become spaces."""
    keep = len(digits.rstrip("0"))
    for index, p in enumerate(positions):
        digit = digits[index]
        if index >= keep and texts[p] != "0":
            digit = " " if texts[p] == "?" else ""
        texts[p] = digit


def _render_scientific(tokens: list[tuple[str, str]], value: float) -> str | None:
    kinds = [k for k, _ in tokens]
    e_at = kinds.index("E")
    mantissa = tokens[:e_at]
    exp_digits = sum(1 for k in kinds[e_at + 1 :] if k == "ph")
    int_digits = sum(1 for k, _ in mantissa[: _index_or(mantissa, ".")] if k == "ph")
    decimals = sum(1 for k, _ in mantissa[_index_or(mantissa, ".") :] if k == "ph")
    if value == 0:
        exponent = 0
    else:
        exponent = int(f"{value:E}".split("E")[1])
        step = max(1, int_digits)  # ##0.0E+0 keeps exponents a multiple of 3
        exponent -= exponent % step if int_digits > 1 else 0
    scaled = value / 10**exponent if value else 0.0
    body = f"{scaled:.{decimals}f}"
    sign = "-" if exponent < 0 else ("+" if tokens[e_at][1] == "+" else "")
    return f"{body}E{sign}{abs(exponent):0{max(1, exp_digits)}d}"


def _index_or(tokens: list[tuple[str, str]], kind: str) -> int:
    kinds = [k for k, _ in tokens]
    return kinds.index(kind) if kind in kinds else len(tokens)


def serial_to_iso(serial: float, date1904: bool, code: str) -> str:
    """An Excel date serial as ISO 8601 (``2023-03-15``, ``13:45``, both, ``00:08.6``),
    only the parts the format's first section names (pass the section a value takes);
    General past the end of the calendar."""
    shown = numfmt_dates.serial_to_iso(serial, date1904, code)
    return general(serial) if shown is None else shown


iso_text = numfmt_dates.iso_text
