"""Property-based and hostile-input tests: the validator and the loader never crash or hang.

Every property compares against an oracle written here from the contract's words (Python's
``re``, ``int``, ``str.strip``, ``unicodedata``), not against the implementation.
"""

from __future__ import annotations

import io
import math
import random
import re
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batch_latch.errors import ConfigError, InputError
from batch_latch.sheet import loader
from batch_latch.sheet.loader import Sheet
from batch_latch.sheet.validate import validate
from tests.conftest import Helpers

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

MAX = 2**63 - 1
FAST = settings(max_examples=150, deadline=None)
FILES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the oracle -----------------------------------------------------------------------------


def fusebill_value(raw: str) -> int | None:
    """The contract: trimmed, ASCII digits, optional ".0", 1..2**63-1."""
    match = re.fullmatch(r"([0-9]+)(\.0)?", raw.strip())
    if not match:
        return None
    value = int(match.group(1))
    return value if 1 <= value <= MAX else None


def geotab_value(raw: str) -> str | None:
    """The contract (v2): trimmed, 1..255 characters, no control characters (category Cc)
    and no invisible ones (format characters Cf, line and paragraph separators Zl, Zp)."""
    text = raw.strip()
    if not 1 <= len(text) <= 255:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        return None
    return text


def expected_verdicts(pairs: list[tuple[str, str]], allow_shared: bool) -> list[tuple[str, str]]:
    """(status, error_key) per row, from the Validation section, row by row."""
    cells = [(fusebill_value(f), geotab_value(g)) for f, g in pairs]
    good = [f is not None and g is not None for f, g in cells]
    gids_of: dict[int | None, set[str | None]] = {}
    fids_of: dict[str | None, set[int | None]] = {}
    for (f, g), ok in zip(cells, good):
        if ok:
            gids_of.setdefault(f, set()).add(g)
            fids_of.setdefault(g, set()).add(f)
    seen: set[tuple[int | None, str | None]] = set()
    out = []
    for (f, g), ok in zip(cells, good):
        if not ok:
            key = {
                (True, False): "invalid_fusebill_id",
                (False, True): "invalid_geotab_id",
                (True, True): "invalid_ids",
            }[(f is None, g is None)]
            out.append(("invalid", key))
        elif len(gids_of[f]) > 1:
            out.append(("invalid", "conflicting_geotab_ids"))
        elif not allow_shared and len(fids_of[g]) > 1:
            out.append(("invalid", "shared_geotab_id"))
        elif (f, g) in seen:
            out.append(("duplicate", "duplicate_row"))
        else:
            out.append(("valid", ""))
        if ok:
            seen.add((f, g))
    return out


def make_sheet(pairs: list[tuple[str, str]], rows: list[int] | None = None) -> Sheet:
    return Sheet(
        path=Path("fuzz.csv"),
        rows=pa.array(rows or range(2, 2 + len(pairs)), type=pa.int64()),
        fusebill=pa.array([f for f, _ in pairs], type=pa.string()),
        geotab=pa.array([g for _, g in pairs], type=pa.string()),
        fusebill_header="fusebillId",
        geotab_header="geotabId",
        extras={},
    )


# --- strategies -----------------------------------------------------------------------------

SPACE = st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\u3000", "\r\n", "\x1c", "\u2028"])
NUMBERISH = st.one_of(
    st.integers(min_value=-5, max_value=2**64 + 5).map(str),
    st.sampled_from([str(MAX), str(MAX + 1), "0", "000", "007", "1.0", "7.0", "1e3", "+5"]),
    st.from_regex(r"[0-9]{1,21}(\.0|\.00|\.5|,000|_0)?", fullmatch=True),
    st.text(alphabet="0123456789.,+-eE _\u0663\uff11", max_size=8),
)
FUSEBILL = st.one_of(
    st.text(max_size=12),
    st.tuples(SPACE, NUMBERISH, SPACE).map("".join),
    st.sampled_from(["1", "2", "3", "01", "2.0"]),  # small pool: duplicates and conflicts
)
GEOTAB = st.one_of(
    st.text(max_size=12),
    st.tuples(SPACE, st.text(max_size=6), SPACE).map("".join),
    st.sampled_from(["A", "B", " A", "a", "C "]),
    st.integers(min_value=250, max_value=260).map(lambda n: "g" * n),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=260),
)
PAIRS = st.lists(st.tuples(FUSEBILL, GEOTAB), min_size=1, max_size=25)


# --- validate -------------------------------------------------------------------------------


@FAST
@given(pairs=PAIRS, allow_shared=st.booleans())
def test_validate_verdicts_match_the_contract(
    pairs: list[tuple[str, str]], allow_shared: bool
) -> None:
    verdicts = validate(make_sheet(pairs), allow_shared_geotab_id=allow_shared)
    assert len(verdicts) == len(pairs)
    got = list(zip(verdicts.status.to_pylist(), verdicts.error_key.to_pylist()))
    assert got == expected_verdicts(pairs, allow_shared)

    trimmed = pc.utf8_trim_whitespace(pa.array([g for _, g in pairs], pa.string())).to_pylist()
    rows = zip(
        pairs,
        trimmed,
        verdicts.fusebill.to_pylist(),
        verdicts.geotab.to_pylist(),
        verdicts.fusebill_id.to_pylist(),
        verdicts.status.to_pylist(),
        verdicts.message.to_pylist(),
    )
    for (raw_f, raw_g), arrow_trimmed, fusebill, geotab, fid, status, message in rows:
        if status in ("valid", "duplicate"):
            digits = raw_f.strip()
            assert re.fullmatch(r"[0-9]+(\.0)?", digits, flags=re.ASCII)
            value = int(digits.split(".")[0])
            assert 1 <= value <= MAX
            assert fusebill == str(value) and fid == value
            assert 1 <= len(geotab) <= 255
            assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in geotab)
            assert geotab == arrow_trimmed  # the validator's trimming...
            assert geotab == raw_g.strip()  # ...is Python's str.strip() here
        else:
            # Invalid rows show the raw cell text, whatever the reason (contract, Reports).
            assert (fusebill, geotab, fid) == (raw_f, raw_g, None)
            assert message


@FAST
@given(pairs=PAIRS, allow_shared=st.booleans())
def test_validate_messages_name_the_rows(pairs: list[tuple[str, str]], allow_shared: bool) -> None:
    verdicts = validate(
        make_sheet(pairs, rows=[10 * i + 7 for i in range(len(pairs))]),
        allow_shared_geotab_id=allow_shared,
    )
    keys = verdicts.error_key.to_pylist()
    messages = verdicts.message.to_pylist()
    expected = expected_verdicts(pairs, allow_shared)
    cells = [(fusebill_value(f), geotab_value(g)) for f, g in pairs]
    for i, (key, message) in enumerate(zip(keys, messages)):
        named = {int(n) for n in re.findall(r"\b(\d+)\b", message)}
        if key == "duplicate_row":
            first = next(j for j in range(i) if cells[j] == cells[i] and expected[j][0] == "valid")
            assert f"row {10 * first + 7}" in message
        elif key == "conflicting_geotab_ids":
            group = [j for j, c in enumerate(cells) if c[0] == cells[i][0] and keys[j] == key]
            if len(group) <= 10:
                assert {10 * j + 7 for j in group} <= named, message


@FAST
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "3", "01", " 2 ", "3.0", "x", ""]),
            st.sampled_from(["A", "B", "C", " A ", "", "b"]),
        ),
        min_size=1,
        max_size=30,
    ),
    allow_shared=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_validate_is_independent_of_row_order(
    pairs: list[tuple[str, str]], allow_shared: bool, seed: int
) -> None:
    rows = list(range(2, 2 + len(pairs)))
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)

    def outcome(index: list[int]) -> tuple[Counter[tuple[str, str, str]], set[int], set[int]]:
        verdicts = validate(
            make_sheet([pairs[i] for i in index], rows=[rows[i] for i in index]),
            allow_shared_geotab_id=allow_shared,
        )
        triples = Counter(
            zip(
                verdicts.fusebill.to_pylist(),
                verdicts.geotab.to_pylist(),
                verdicts.status.to_pylist(),
            )
        )
        keyed = list(zip(verdicts.rows.to_pylist(), verdicts.error_key.to_pylist()))
        conflict = {r for r, k in keyed if k == "conflicting_geotab_ids"}
        shared = {r for r, k in keyed if k == "shared_geotab_id"}
        return triples, conflict, shared

    assert outcome(order) == outcome(list(range(len(pairs))))


@FAST
@given(fusebill=st.text(), geotab=st.text())
def test_validate_any_text_gives_a_verdict(fusebill: str, geotab: str) -> None:
    verdicts = validate(make_sheet([(fusebill, geotab), (geotab, fusebill)]))
    assert set(verdicts.status.to_pylist()) <= {"valid", "invalid", "duplicate"}
    assert verdicts.status.null_count == 0 and verdicts.message.null_count == 0


def test_arrow_trimming_equals_str_strip() -> None:
    """The validator trims with Arrow; the oracle above with ``str.strip``: they must agree.

    Every code point up to U+3000 (where the last Unicode whitespace lives) and the usual
    suspects beyond; checked both ways: what one trims the other trims.
    """
    points = [c for c in range(0x3001) if not 0xD800 <= c < 0xE000]
    points += [0xFEFF, 0x180E, 0x200B, 0xFFFD, 0x1F600]
    texts = [chr(c) + "x" + chr(c) for c in points]
    arrow = pc.utf8_trim_whitespace(pa.array(texts, pa.string())).to_pylist()
    differ = [hex(c) for c, t, a in zip(points, texts, arrow) if a != t.strip()]
    assert differ == []


# --- the loader on structured CSV -----------------------------------------------------------

ALIASES = {"fusebillid", "fusebillcustomerid", "geotabid", "geotabresellercustomerid"}
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYZ ", min_size=1, max_size=8).filter(
    lambda s: s.strip() and s.replace(" ", "").lower() not in ALIASES
)
CELL = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", " ", "'=x", "''=x", "'abc", "=1+1", "0909909", '"', "a\nb", "\r"]),
)


def unescape(text: str) -> str:
    """One leading "'" goes when one or more "'" stand before a formula character."""
    return re.sub(r"^'(?='*[=+\-@\t\r\n])", "", text)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str, bool]:
    names = draw(st.lists(NAME, max_size=4, unique_by=lambda s: s.strip()))
    header = list(names)
    header.insert(draw(st.integers(0, len(header))), "fusebillId")
    header.insert(draw(st.integers(0, len(header))), "Geotab ID")
    width = len(header)
    data = draw(
        st.lists(
            st.one_of(
                st.lists(CELL, min_size=width, max_size=width),
                st.lists(CELL, min_size=0, max_size=width + 2),  # ragged
                st.just([""] * width),  # blank
            ),
            max_size=8,
        )
    )
    return header, data, draw(st.sampled_from([",", ";", "\t"])), draw(st.booleans())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FILES
@given(spec=csv_files())
def test_loader_reads_any_csv_the_csv_module_writes(
    scratch: Path, helpers: type[Helpers], spec: tuple[list[str], list[list[str]], str, bool]
) -> None:
    header, data, delimiter, bom = spec
    path = helpers.write_csv(scratch / "spec.csv", [header, *data], delimiter=delimiter, bom=bom)

    width = max([len(header)] + [len(r) for r in data])
    padded = [r + [""] * (width - len(r)) for r in data]
    keep = [i for i, r in enumerate(padded) if any(c.strip() for c in r)]
    if not keep:
        with pytest.raises(InputError):
            loader.load(path)
        return
    sheet = loader.load(path)
    fid, gid = header.index("fusebillId"), header.index("Geotab ID")
    assert sheet.rows.to_pylist() == [i + 2 for i in keep]
    assert sheet.fusebill.to_pylist() == [unescape(padded[i][fid]) for i in keep]
    assert sheet.geotab.to_pylist() == [unescape(padded[i][gid]) for i in keep]
    expected = {}
    for col in range(width):
        if col in (fid, gid):
            continue
        column = [unescape(padded[i][col]) for i in keep]
        if col < len(header):
            expected[header[col].strip()] = column
        elif any(column):
            expected[f"column_{col + 1}"] = column
    assert {k: v.to_pylist() for k, v in sheet.extras.items()} == expected
    assert list(sheet.extras) == list(expected)  # in input order


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(
        st.one_of(
            # Excel numbers are doubles: whole numbers are exact up to 2**53 only.
            st.integers(min_value=-(2**53), max_value=2**53),
            # openpyxl writes floats with 16 significant digits; Excel shows 15.
            st.floats(min_value=-1e15, max_value=1e15, allow_subnormal=False).map(
                lambda x: float(f"{x:.15g}")
            ),
            st.text(alphabet="abc 0123456789.-=é'", max_size=8),
        ),
        min_size=2,
        max_size=12,
    )
)
def test_loader_xlsx_cells_become_text(
    scratch: Path, helpers: type[Helpers], cells: list[Any]
) -> None:
    rows = {1: ["fusebillId", "geotabId"]}
    rows.update({i + 2: [cell, "g"] for i, cell in enumerate(cells)})
    path = helpers.write_xlsx(scratch / "cells.xlsx", {"S": rows})

    sheet = loader.load(path)
    assert sheet.rows.to_pylist() == list(range(2, 2 + len(cells)))
    for cell, shown in zip(cells, sheet.fusebill.to_pylist()):
        assert_general(cell, shown)


def assert_general(cell: Any, shown: str) -> None:
    """Excel's General in a standard-width cell (Microsoft: "Available number formats"):
    whole numbers of up to 11 characters exactly; anything else at most 11 characters (12
    with a minus sign), scientific (``1.23457E+11``) when the digits do not fit, and close
    to the value."""
    if isinstance(cell, str):
        assert shown == unescape(cell)
        return
    if float(cell).is_integer() and len(str(int(cell))) <= 11:
        assert shown == str(int(cell))
        return
    assert len(shown.lstrip("-")) <= 11, shown
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?(E[+-][0-9]{2,3})?", shown), shown
    assert math.isclose(float(shown), cell, rel_tol=5e-5, abs_tol=1e-9), (cell, shown)


# --- the loader on hostile files ------------------------------------------------------------


def load_or_error(path: Path) -> Sheet | None:
    """A Sheet, or None after an InputError/ConfigError with a one-line message."""
    try:
        sheet = loader.load(path)
    except (InputError, ConfigError) as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
        return None
    n = len(sheet)
    assert n >= 1
    rows = sheet.rows.to_pylist()
    assert rows == sorted(set(rows)) and rows[0] >= 2
    for column in (sheet.fusebill, sheet.geotab, *sheet.extras.values()):
        assert len(column) == n and column.null_count == 0
        assert pa.types.is_string(column.type)
    validate(sheet)  # whatever loaded can be validated
    return sheet


CSVISH = st.text(alphabet=list(",;\t\r\n\"' =ab1\x00é\ufeff"), max_size=200)


@settings(FILES, max_examples=300)
@given(
    data=st.one_of(
        st.binary(max_size=1500),
        st.binary(max_size=500).map(lambda b: b"fusebillId,geotabId\r\n" + b),
        st.binary(max_size=500).map(lambda b: b"\xef\xbb\xbffusebillId;geotabId\n" + b),
        CSVISH.map(lambda t: ("fusebillId,geotabId\n" + t).encode()),
        CSVISH.map(lambda t: t.encode("utf-8")),
    ),
    suffix=st.sampled_from([".csv", ".xlsx", ".CSV"]),
)
def test_loader_random_bytes(scratch: Path, data: bytes, suffix: str) -> None:
    path = scratch / f"random{suffix}"
    path.write_bytes(data)
    load_or_error(path)


@pytest.mark.parametrize("fraction", [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])
def test_truncated_xlsx(tmp_path: Path, small_xlsx_bytes: bytes, fraction: float) -> None:
    path = tmp_path / "cut.xlsx"
    path.write_bytes(small_xlsx_bytes[: int(len(small_xlsx_bytes) * fraction)])
    assert load_or_error(path) is None


def _members(xlsx: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        return archive.namelist()


def _rezip(xlsx: bytes, change: dict[str, bytes | None]) -> bytes:
    """Copy a workbook, replacing (or, with None, dropping) some members."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for name in source.namelist():
            data = change.get(name, source.read(name))
            if data is not None:
                target.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("damage", ["truncate", "drop", "garbage"])
def test_damaged_xlsx_members(tmp_path: Path, small_xlsx_bytes: bytes, damage: str) -> None:
    with zipfile.ZipFile(io.BytesIO(small_xlsx_bytes)) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    for i, name in enumerate(contents):
        data = contents[name]
        replacement = {
            "truncate": data[: len(data) // 2],
            "drop": None,
            "garbage": b"<<not xml \x00\xff>>",
        }[damage]
        path = tmp_path / f"damaged{i}.xlsx"
        path.write_bytes(_rezip(small_xlsx_bytes, {name: replacement}))
        load_or_error(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_xlsx_with_flipped_bytes_in_a_member(
    scratch: Path, small_xlsx_bytes: bytes, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(_members(small_xlsx_bytes)))
    with zipfile.ZipFile(io.BytesIO(small_xlsx_bytes)) as archive:
        member = bytearray(archive.read(name))
    assume(member)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(member) - 1))
        member[at] = data.draw(st.integers(0, 255))
    path = scratch / "flipped.xlsx"
    path.write_bytes(_rezip(small_xlsx_bytes, {name: bytes(member)}))
    load_or_error(path)


def test_huge_single_cell(tmp_path: Path) -> None:
    big = "x" * (5 * 1024 * 1024)
    path = tmp_path / "huge.csv"
    path.write_bytes(f'fusebillId,geotabId,Notes\r\n1,"{big}",n\r\n2,ok,"{big}"\r\n'.encode())
    sheet = load_or_error(path)
    assert sheet is not None
    assert [len(g) for g in sheet.geotab.to_pylist()] == [len(big), 2]
    assert validate(sheet).status.to_pylist() == ["invalid", "valid"]


def test_huge_unquoted_cell(tmp_path: Path) -> None:
    big = "y" * (3 * 1024 * 1024)
    path = tmp_path / "huge.csv"
    path.write_bytes(f"fusebillId,geotabId\n{big},g\n".encode())
    sheet = load_or_error(path)
    assert sheet is not None and sheet.fusebill.to_pylist() == [big]


def test_nul_bytes(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(
        b"fusebillId,geotabId,No\x00tes\r\n1,a\x00b,\x00\r\n\x00,\x00,\x00\r\n2,c,d\r\n"
    )
    sheet = load_or_error(path)
    assert sheet is not None
    assert sheet.geotab.to_pylist() == ["a\x00b", "\x00", "c"]
    assert validate(sheet).status.to_pylist() == ["invalid", "invalid", "valid"]
    assert list(sheet.extras) == ["No\x00tes"]


def test_nul_bytes_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"\x00" * 1000)
    assert load_or_error(path) is None


def test_ten_thousand_columns(tmp_path: Path, helpers: type[Helpers]) -> None:
    width = 10_000
    header = ["fusebillId", "geotabId"] + [f"c{i}" for i in range(3, width + 1)]
    rows = [[str(r), f"g{r}"] + [f"{r}.{i}" for i in range(3, width + 1)] for r in (1, 2, 3)]
    path = helpers.write_csv(tmp_path / "wide.csv", [header, *rows])
    sheet = load_or_error(path)
    assert sheet is not None
    assert len(sheet.extras) == width - 2
    assert sheet.extras["c9999"].to_pylist() == ["1.9999", "2.9999", "3.9999"]
    # ...and the same with a ragged row, through the tolerant reader.
    path.write_bytes(path.read_bytes() + b"4,g4\r\n")
    sheet = load_or_error(path)
    assert sheet is not None and sheet.extras["c9999"].to_pylist()[-1] == ""


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_header_longer_than_the_sniffed_sample(
    tmp_path: Path, helpers: type[Helpers], delimiter: str
) -> None:
    # About 250 KB of header, the id columns at its very end: the delimiter and the width
    # cannot be read from the first 64 KB alone.
    names = [f"an extra column named {i}" for i in range(10_000)]
    header = [*names, "Fusebill ID", "Geotab ID"]
    rows = [["x"] * len(names) + ["1", "g1"], ["y"] * len(names) + ["2", "g2"]]
    path = helpers.write_csv(tmp_path / "long.csv", [header, *rows], delimiter=delimiter)
    assert path.stat().st_size > 4 * 64 * 1024
    sheet = load_or_error(path)
    assert sheet is not None
    assert sheet.fusebill.to_pylist() == ["1", "2"] and sheet.geotab.to_pylist() == ["g1", "g2"]
    assert list(sheet.extras) == names


@pytest.mark.slow
def test_hostile_files_through_the_cli(
    tmp_path: Path, helpers: type[Helpers], small_xlsx_bytes: bytes
) -> None:
    """A few hostile files as real runs, under a timeout: exit 0/1/2, no traceback, no hang."""
    rng = random.Random(20240101)
    wide = ["fusebillId", "geotabId"] + [f"c{i}" for i in range(10_000)]
    files = {
        "random.csv": bytes(rng.randrange(256) for _ in range(4000)),
        "huge.csv": b'fusebillId,geotabId\n1,"' + b"z\n" * (2 * 1024 * 1024) + b'"\n2,ok\n',
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    helpers.write_csv(tmp_path / "wide.csv", [wide, ["1", "g", *["v"] * 10_000]])
    names = [*files, "wide.csv"]
    results = helpers.run_cli_many(
        [["run", tmp_path / n, "--dry-run", "--out", tmp_path / f"{n}-out"] for n in names],
        cwd=tmp_path,
        timeout=120,
    )
    outcome = {}
    for name, result in zip(names, results):
        assert result.returncode in (0, 1, 2), (name, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and "Exception" not in result.stderr, name
        if result.returncode == 2:
            helpers.assert_one_line_error(result)
        else:
            assert result.stderr == "", (name, result.stderr)
        outcome[name] = result.returncode
    assert outcome["huge.csv"] == 1  # the huge geotabId is invalid, the other row valid
    assert outcome["wide.csv"] == 0
    header = helpers.read_csv_records(tmp_path / "wide.csv-out" / "results.csv")[0]
    assert len(header) == len(set(header)) and header[-1] == "c9999"
