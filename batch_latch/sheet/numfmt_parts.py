"""The parts of Excel's number-format grammar beyond plain placeholders: which section a
value takes (conditions), text sections on text cells, fractions, Excel's 15 significant
digits, the formats this tool cannot reproduce, and when a number cell's display is not
the number it stores (so it cannot be an id).

Sources (read, not copied): ECMA-376 Part 1 §18.8.31 (numFmt: four sections, conditions,
``@``, fractions ``?/?``); Microsoft support "Number format codes" (conditions in brackets,
the text section, "Excel keeps 15 significant digits"); ExcelNumberFormat for .NET
(Evaluator.GetSection: the order conditions are tried in, and that the first section with
a condition and the second section show no minus sign); SheetJS SSF (``@`` belongs to the
last section; fractions ``# ?/?`` and ``?/8``; the integer part blank under ``#`` when it
is 0); Apache POI DataFormatter (out-of-reach ``[DBNum]`` and calendar codes).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction

#: Excel keeps 15 significant digits of a number (Microsoft: "Excel stores 15 significant
#: digits of precision"); what it shows is the stored double rounded to that.
EXCEL_DIGITS = 15
_CONTEXT = Context(prec=400)  # room for 1E+308 written out in full, and its decimals
_CONDITION = re.compile(r"\[(<=|>=|<>|<|>|=)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\]")
_BRACKETS = re.compile(r'"[^"]*"|\\.|\[([^\]]*)\]')
_KNOWN_BRACKET = re.compile(
    r"(?i)(black|blue|cyan|green|magenta|red|white|yellow|color\s*[0-9]{1,2}"
    r"|h+|m+|s+|(<=|>=|<>|<|>|=)\s*-?[0-9.]+(e[-+]?[0-9]+)?)"
)
# [$-xxyyzzzz] (ECMA-376 §18.8.31; MS-OI29500): zzzz the LCID, yy the calendar, xx the
# numeral system. Gregorian (00-02) with Latin digits is what this tool renders.
_LOCALE = re.compile(r"\$[^-\]]*-([0-9A-Fa-f]{1,8})")


@dataclass(frozen=True)
class Condition:
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return {
            "<": value < self.bound,
            "<=": value <= self.bound,
            ">": value > self.bound,
            ">=": value >= self.bound,
            "=": value == self.bound,
            "<>": value != self.bound,
        }[self.op]


def condition(section: str) -> Condition | None:
    """The section's ``[<100000]`` condition, outside quotes and escapes, if any."""
    for match in _BRACKETS.finditer(section):
        inner = match.group(1)
        if inner is None:
            continue
        found = _CONDITION.fullmatch(f"[{inner.strip()}]")
        if found:
            return Condition(found.group(1), float(found.group(2)))
    return None


def choose(conditions: list[Condition | None], value: float) -> tuple[int, bool] | None:
    """(section index, whether the sign is dropped) for ``value`` among the numeric
    sections, as Excel picks: a condition first, then positive; negative; zero. The first
    section under a condition and the second section show the number without its sign (the
    section itself says how a negative looks). None: no section applies."""
    n = len(conditions)
    if not n:
        return None
    first = conditions[0]
    if first is not None:
        if first.holds(value):
            return 0, True
    elif n == 1 or (n == 2 and value >= 0) or value > 0:
        return 0, False
    if n < 2:
        return None
    second = conditions[1]
    if second is not None:
        if second.holds(value):
            return 1, True
    elif value < 0 or (n == 2 and first is not None):
        return 1, True
    return (2, False) if n >= 3 else None


@functools.lru_cache(maxsize=1024)
def unsupported(code: str) -> str | None:
    """Why a format is out of this tool's reach (its display would be a guess), or None.

    Native numerals (``[DBNum1]``, LibreOffice's ``[NatNum1]``), a locale's numeral system or
    a calendar other than the Gregorian one (``[$-1010409]``, ``B2`` Hijri dates), brackets
    Excel gives meanings this module does not know, more than four sections or more than two
    conditions."""
    sections = split(code)
    if len(sections) > 4:
        return "it has more than four sections"
    if sum(condition(s) is not None for s in sections) > 2:
        return "it has more than two conditions"
    for match in _BRACKETS.finditer(code):
        inner = match.group(1)
        if inner is None:
            continue  # a quoted literal or an escaped character
        inner = inner.strip()
        if inner.startswith("$"):
            locale = _LOCALE.match(inner)
            if locale and _exotic_locale(int(locale.group(1), 16)):
                return f"[{inner}] asks for other numerals or another calendar"
            continue
        if not _KNOWN_BRACKET.fullmatch(inner):
            return f"[{inner}] is not modelled"
    bare = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code)
    if re.search(r"[Bb][12]", bare) and re.search(r"[yYdD]", bare):
        return "its dates are in another calendar"
    return None


def _exotic_locale(value: int) -> bool:
    numerals, calendar = value >> 24, (value >> 16) & 0xFF
    system = value & 0xFFFF in (0xF800, 0xF400)  # the system's long date / time
    return bool(numerals) or calendar not in (0, 1, 2) or system


def split(code: str) -> list[str]:
    """Sections split on ``;`` outside quotes, escapes and brackets."""
    out, start, i = [], 0, 0
    while i < len(code):
        char = code[i]
        if char == '"':
            end = code.find('"', i + 1)
            i = len(code) if end < 0 else end + 1
            continue
        if char == "[":
            end = code.find("]", i)
            i = len(code) if end < 0 else end + 1
            continue
        if char in "\\_*":
            i += 2
            continue
        if char == ";":
            out.append(code[start:i])
            start = i + 1
        i += 1
    out.append(code[start:])
    return out


@functools.lru_cache(maxsize=1024)
def text_pieces(code: str) -> tuple[str, ...] | None:
    """A format's text section as the literal pieces around each ``@`` (``"GT"@`` gives
    ``("GT", "")``), or None when text cells show as they are. The text section is the fourth,
    or the last one when it holds ``@`` (SSF: "Only the text case is allowed to have the @
    text sigil. Excel interprets it as the last format")."""
    sections = split(code)
    if len(sections) >= 4:
        section = sections[3]
    elif _has_at(sections[-1]) and code.strip() != "@":
        section = sections[-1]
    else:
        return None
    pieces, current, i = [], [], 0
    while i < len(section):
        char = section[i]
        if char == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            current.append(section[i + 1 : end])
            i = end + 1
        elif char in "\\_*" and i + 1 < len(section):
            current.append({"\\": section[i + 1], "_": " ", "*": ""}[char])
            i += 2
        elif char == "[":
            end = section.find("]", i)
            inner = section[i + 1 : (len(section) if end < 0 else end)]
            if inner.startswith("$"):
                current.append(inner[1:].split("-")[0])
            i = len(section) if end < 0 else end + 1
        elif char == "@":
            pieces.append("".join(current))
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    pieces.append("".join(current))
    return tuple(pieces)


def _has_at(section: str) -> bool:
    return "@" in re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", section)


def numeric_sections(sections: list[str]) -> list[str]:
    """The sections numbers use: not the fourth, nor a last one holding ``@``."""
    if len(sections) >= 4:
        return sections[:3]
    if _has_at(sections[-1]):
        return sections[:-1]
    return sections


def excel_decimal(value: float) -> Decimal:
    """The stored double as Excel holds it: rounded to 15 significant digits, half up
    (``1.234567890123457E+16`` is ``12345678901234600``)."""
    exact = Decimal(repr(value))
    if not exact:
        return exact
    digits = exact.adjusted() + 1 - EXCEL_DIGITS
    return exact.quantize(Decimal(1).scaleb(digits), ROUND_HALF_UP, _CONTEXT)


def rounded(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP, _CONTEXT)


def loses_digits(value: float) -> bool:
    """More than 15 significant digits where it matters: Excel's 15 changes the number's
    whole part (``12345678901234567`` is ``12345678901234600``), or the number is too large
    for its every digit to be kept. Digits past the 15th in the fraction of a smaller
    number (``12717595.000000002``, a calculation's dust) do not count."""
    if not math.isfinite(value) or (abs(value) < 1e15 and value.is_integer()):
        return False
    kept = float(excel_decimal(value))
    if kept == value:
        return False
    return abs(value) >= 1e15 or math.trunc(kept) != math.trunc(value)


def stored_text(value: float) -> str:
    """The stored number written out without an exponent: ``12345678901234570``."""
    text = f"{Decimal(repr(value)):f}"
    return text[:-2] if text.endswith(".0") else text


def id_problem(value: float, shown: str, general: bool) -> str:
    """Why a number cell cannot be an id ("" if it can): Excel has already lost digits, or
    General shows it in a scientific or rounded form."""
    if loses_digits(value):
        return (
            f"Excel shows {shown!r} but the cell stores {stored_text(value)}, more than the "
            "15 significant digits Excel keeps, so digits are lost: store ids as text"
        )
    if general and ("E" in shown or _as_float(shown) != float(excel_decimal(value))):
        return f"Excel shows {shown!r} but the cell stores {stored_text(value)}: store ids as text"
    return ""


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class FractionShape:
    """Where a fraction section's parts are (found once per section)."""

    tokens: list[tuple[str, str]]
    num: tuple[int, int]  # numerator placeholders [start, end)
    den: tuple[int, int]  # denominator placeholders or digits [start, end)
    int_ph: list[int]  # integer placeholders (none: an improper fraction)
    fixed: str  # a written denominator ("8"), or ""
    whole: tuple[str, str]  # a whole number's text is before + digits + after


def fraction_shape(tokens: list[tuple[str, str]]) -> FractionShape | None:
    """The shape of ``# ?/?``, ``# ??/??``, ``?/8``..., or None when the ``/`` has no
    placeholders beside it (not a shape Excel documents)."""
    kinds = [k for k, _ in tokens]
    slash = kinds.index("/")
    start = slash
    while start > 0 and kinds[start - 1] == "ph":
        start -= 1
    end = slash + 1
    while end < len(tokens) and (
        kinds[end] == "ph" or (kinds[end] == "lit" and tokens[end][1].isdigit())
    ):
        end += 1
    if start == slash or end == slash + 1:
        return None
    int_ph = [i for i in range(start) if kinds[i] == "ph"]
    fixed = "".join(t for _, t in tokens[slash + 1 : end])
    out = ["" if k in (",", ".") else t for k, t in tokens]
    out[start:end] = [" " * (end - start)] + [""] * (end - start - 1)
    last = int_ph[-1] if int_ph else 0
    for p in int_ph:
        out[p] = ""
    whole = ("".join(out[:last]), "".join(out[last + 1 :]))
    return FractionShape(tokens, (start, slash), (slash + 1, end), int_ph, fixed, whole)


def fraction(shape: FractionShape, value: float) -> str:
    """A fraction section for a non-negative value. The denominator is fixed when written
    as digits, else the closest fraction with that many denominator digits; without an
    integer part the fraction is improper (``?/8`` on 1.5 is ``12/8``)."""
    tokens, fixed, int_ph = shape.tokens, shape.fixed, shape.int_ph
    digits = fixed.isdigit()
    if int_ph and value.is_integer() and value < 1e15:  # a whole number: no search
        whole, part = int(value), Fraction(0)
    else:
        exact = Fraction(str(excel_decimal(value)))
        whole = math.floor(exact) if int_ph else 0
        part = exact - whole
    if not part:
        numerator, denominator = 0, int(fixed) if digits else 1
    elif digits:
        denominator = int(fixed)
        numerator = int((part * denominator + Fraction(1, 2)) // 1)
    else:
        best = part.limit_denominator(10 ** len(fixed) - 1)
        numerator, denominator = best.numerator, best.denominator
    if int_ph and numerator == denominator and numerator:
        whole, numerator = whole + 1, 0
    marks = [t for _, t in tokens]
    if int_ph and not numerator:  # a whole number: the fraction's room stays blank
        minimum = sum(1 for p in int_ph if marks[p] == "0")
        return shape.whole[0] + str(whole).rjust(minimum, "0") + shape.whole[1]
    out = ["" if k in (",", ".") else t for k, t in tokens]
    _place_integer(out, marks, int_ph, whole, bool(numerator))
    (a, b), (c, d) = shape.num, shape.den
    out[a:b] = [_pad(str(numerator), marks[a:b], left=True)] + [""] * (b - a - 1)
    den_text = str(denominator) if digits else _pad(str(denominator), fixed, left=False)
    out[c:d] = [den_text] + [""] * (d - c - 1)
    return "".join(out)


def _place_integer(
    out: list[str], marks: list[str], positions: list[int], whole: int, has_fraction: bool
) -> None:
    """The integer part into its placeholders; under ``#`` a 0 is blank when a fraction
    follows (``# ?/?`` on 0.5 is `` 1/2``), and shown when nothing else would be."""
    if not positions:
        return
    digits = str(whole) if whole or not has_fraction else ""
    minimum = sum(1 for p in positions if marks[p] == "0")
    digits = digits.rjust(minimum, "0")
    for p in positions:
        out[p] = ""
    out[positions[-1]] = digits


def _pad(digits: str, marks: list[str] | str, *, left: bool) -> str:
    """Digits in ``?``/``0``/``#`` room: ``?`` pads with spaces, ``0`` with zeros."""
    room = len(marks)
    if len(digits) >= room:
        return digits
    fill = marks[: room - len(digits)] if left else marks[len(digits) :]
    padding = "".join({"?": " ", "0": "0"}.get(m, "") for m in fill)
    return padding + digits if left else digits + padding
