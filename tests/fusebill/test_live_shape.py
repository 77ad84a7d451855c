"""The tool reads the sandbox's live-shaped customer objects (contract v4 "The sandbox's
customers look like a live answer"): a top-level ``geotabId`` ``null`` holds none, a text one
is held, and the extra live fields change nothing. Pure: the objects, no HTTP."""

from __future__ import annotations

from batch_latch.fusebill.answers import (
    Holding,
    Meaning,
    Reply,
    classify_latch,
    classify_read,
    classify_unlatch,
)
from batch_latch.fusebill.listing import classify_list
from batch_latch.sandbox.customers import Record, customer_json

BASE = "http://127.0.0.1:8765/v1"


def live(fid: int, geotab_id: str | None) -> Reply:
    return Reply(200, customer_json(fid, Record(geotab_id), base=BASE), {})


def test_a_null_top_level_geotab_id_holds_none() -> None:
    verdict, holding = classify_read(live(1_000_001, None), 1_000_001)
    assert verdict.kind is Meaning.SUCCESS and holding == Holding(None)
    assert live(1_000_001, None).body["uri"] == "http://127.0.0.1:8765/v1/customers/1000001"


def test_a_text_geotab_id_is_held() -> None:
    verdict, holding = classify_read(live(1_000_001, "0909909"), 1_000_001)
    assert verdict.kind is Meaning.SUCCESS and holding == Holding("0909909")


def test_a_latch_and_an_unlatch_answer_prove_themselves() -> None:
    assert classify_latch(live(1_000_001, "G1"), "G1", 1_000_001).kind is Meaning.SUCCESS
    assert classify_latch(live(1_000_001, "OTHER"), "G1", 1_000_001).kind is not Meaning.SUCCESS
    assert classify_unlatch(live(1_000_001, None), 1_000_001).kind is Meaning.SUCCESS


def test_a_list_of_live_objects_is_trusted() -> None:
    body = [customer_json(fid, Record(g), base=BASE) for fid, g in ((1, None), (2, "G2"))]
    got = classify_list(Reply(200, body, {"x-pagesize": "3"}), [1, 2, 3], 0)
    assert got.untrusted is None and got.next_page is None
    assert dict(got.holdings) == {1: Holding(None), 2: Holding("G2")}
    assert got.read_alone == (3,)
