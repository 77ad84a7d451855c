"""What each option accepts as typed on the command line, and the one line it says when it
refuses (argparse prints it after ``argument --rate:``). Every value and bound here is
the contract's, written as a literal."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from batch_latch.optiontypes import (
    QuotaReserve,
    delimiter_type,
    fusebill_id_type,
    parse_reserve,
    positive_float,
    positive_int,
    quota_reserve,
    read_batch_type,
)


def refusal(parse: Callable[[str], object], text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        parse(text)
    return str(refused.value)


# --- --rate, --timeout: a number more than 0 -------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("10", 10.0), ("0.5", 0.5), ("1e-3", 0.001)])
def test_rate_and_timeout_take_any_number_more_than_0(text: str, value: float) -> None:
    assert positive_float(text) == value


@pytest.mark.parametrize("text", ["0", "0.0", "-1", "inf", "nan"])
def test_rate_and_timeout_refuse_0_negatives_infinity_and_nan(text: str) -> None:
    assert refusal(positive_float, text) == f"must be more than 0, got '{text}'"


def test_rate_says_it_expected_a_number() -> None:
    assert refusal(positive_float, "fast") == "expected a number, got 'fast'"


# --- --workers, --max-attempts, --max-requests: a whole number, 1 or more --------------------


def test_counts_take_1_and_more() -> None:
    assert (positive_int("1"), positive_int("8")) == (1, 8)


@pytest.mark.parametrize("text", ["0", "-3"])
def test_counts_refuse_0_and_negatives(text: str) -> None:
    assert refusal(positive_int, text) == f"must be at least 1, got '{text}'"


def test_counts_say_they_expected_a_whole_number() -> None:
    assert refusal(positive_int, "2.5") == "expected a whole number, got '2.5'"


# --- --read-batch: 1 to 500 -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "100", "500"])
def test_read_batch_takes_1_to_500(text: str) -> None:
    assert read_batch_type(text) == int(text)


def test_read_batch_above_500_says_its_range() -> None:
    assert refusal(read_batch_type, "501") == "must be 1 to 500, got '501'"


def test_read_batch_0_is_refused_as_any_count_is() -> None:
    assert refusal(read_batch_type, "0") == "must be at least 1, got '0'"


# --- --delimiter: , ; tab or |, by character or by name --------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (",", ","),
        ("comma", ","),
        (";", ";"),
        ("Semicolon", ";"),
        ("|", "|"),
        (" PIPE ", "|"),
        ("tab", "tab"),
        ("TAB", "tab"),
        ("\\t", "tab"),
        ("\t", "tab"),  # a real tab: blank once stripped, taken as given
    ],
)
def test_delimiter_takes_the_four_by_character_or_by_name_in_any_case(
    text: str, value: str
) -> None:
    assert delimiter_type(text) == value


@pytest.mark.parametrize("text", [":", "space", ""])
def test_delimiter_refuses_others_and_names_the_four(text: str) -> None:
    assert refusal(delimiter_type, text) == f"expected , ; tab or |, got {text!r}"


# --- --quota-reserve: a count of requests, or a percent of the daily limit --------------------


@pytest.mark.parametrize(
    ("text", "limit_day", "reserved"),
    [
        ("500", 10_000, 500),
        ("500", None, 500),  # a count needs no limit
        ("10%", 10_000, 1_000),
        ("10%", 5_000, 500),
        ("12.5%", 1_000, 125),
        ("10%", 999, 99),  # whole requests, rounded down
        ("10%", None, 0),  # before the account's limit is known
        ("10%", 0, 0),
        ("0", 10_000, 0),
        ("0%", 10_000, 0),
    ],
)
def test_a_reserve_is_a_count_or_a_percent_of_the_daily_limit(
    text: str, limit_day: int | None, reserved: int
) -> None:
    assert quota_reserve(text).of(limit_day) == reserved


def test_a_reserve_keeps_its_text_as_given_for_the_summary() -> None:
    assert str(quota_reserve(" 10% ")) == "10%"  # as given, blanks trimmed
    assert parse_reserve("250") == QuotaReserve("250", count=250)
    assert parse_reserve("10%") == QuotaReserve("10%", percent=10.0)


@pytest.mark.parametrize("text", ["-1", "100%", "150%", "-5%", "ten", "10 %%", ""])
def test_a_reserve_refuses_negatives_a_whole_day_and_words(text: str) -> None:
    assert parse_reserve(text) is None
    assert refusal(quota_reserve, text) == (
        f"expected a count of requests (500) or a percent of the daily limit (10%), got {text!r}"
    )


def test_a_reserve_just_under_a_whole_day_is_taken() -> None:
    assert quota_reserve("99.9%").of(1_000) == 999


# --- status --customer: a fusebillId ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1), (" 2000254 ", 2_000_254), (str(2**63 - 1), 2**63 - 1)]
)
def test_a_fusebill_id_is_digits_from_1_to_the_largest_64_bit_id(text: str, value: int) -> None:
    assert fusebill_id_type(text) == value


@pytest.mark.parametrize("text", ["0", str(2**63), "-5", "12a", "١٢", "1.0", ""])
def test_a_fusebill_id_refuses_0_too_large_signs_and_other_digits(text: str) -> None:
    assert refusal(fusebill_id_type, text) == (
        f"expected a fusebillId (digits, 1 or more), got {text!r}"
    )
