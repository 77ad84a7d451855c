"""Every error key an answer can be given is listed in ``vocab`` (and so documented): the
classifiers walked over a grid of canned answers, every status with every kind of body."""

from __future__ import annotations

import itertools
from typing import Any

from batch_latch.fusebill.answers import (
    Reply,
    ReplyError,
    Verdict,
    classify_latch,
    classify_read,
    classify_unlatch,
)
from batch_latch.fusebill.listing import classify_list
from batch_latch.vocab import ErrorKey, StopReason, is_error_key, is_http_key

ID, SENT = 1_000_003, "G-1"
URL = "https://secure.fusebill.test/v1/customers/1000003"
STATUSES = [None, 100, 103, 200, 201, 204, 301, 304, 307, 400, 401, 403, 404, 405, 407, 408]
STATUSES += [409, 410, 422, 429, 500, 502, 503, 504, 599]
BODIES: list[Any] = [
    None,
    "",
    "<html><head><title>Sign in</title></head></html>",
    "plain text",
    [],
    {},
    {"id": ID, "geotabId": SENT},
    {"id": ID, "geotabId": "G-other"},
    {"id": ID, "geotabId": None},
    {"id": ID},
    {"id": 42, "geotabId": SENT},
    {"id": ID, "geotabId": 12.5},
    [{"id": ID, "geotabId": SENT}],
    [{"id": 42}],
    {"HttpStatusCode": 404, "Errors": [{"Key": "", "Value": f"Customer {ID} not found"}]},
    {"HttpStatusCode": 404, "Errors": [{"Key": "", "Value": "Resource not found"}]},
    {"Errors": [{"Key": "quota", "Value": "daily limit reached"}]},
]
ERRORS: list[ReplyError | None] = [None, *ReplyError]


def replies() -> list[Reply]:
    grid = itertools.product(STATUSES, BODIES, ERRORS)
    return [Reply(s, b, {}, e, "detail", URL) for s, b, e in grid]


def verdicts(reply: Reply) -> list[Verdict]:
    return [
        classify_latch(reply, SENT, ID),
        classify_read(reply, ID)[0],
        classify_unlatch(reply, ID),
        classify_list(reply, [ID]).verdict,
    ]


def test_every_key_an_answer_is_given_is_listed() -> None:
    seen: set[str] = set()
    for reply in replies():
        for verdict in verdicts(reply):
            key = verdict.error_key
            assert is_error_key(key), (reply, verdict)
            assert isinstance(key, (ErrorKey, StopReason)) or is_http_key(key), (reply, verdict)
            seen.add(key)
    # the grid reaches every key the classifiers make (else it proves little)
    made = {
        ErrorKey.NONE,
        ErrorKey.NOT_FOUND,
        ErrorKey.UNREADABLE,
        ErrorKey.UNCONFIRMED,
        ErrorKey.GEOTAB_ID_MISMATCH,
        ErrorKey.TIMEOUT,
        ErrorKey.CONNECTION,
        ErrorKey.LIST_UNTRUSTED,
        StopReason.KEY_REJECTED,
        StopReason.RATE_LIMITED,
        StopReason.WRONG_URL,
        StopReason.REDIRECT,
        StopReason.TLS,
        StopReason.PROXY,
    }
    assert made <= seen, made - seen
    assert {"http_400", "http_408", "http_409", "http_500", "http_599"} <= seen


def test_a_stop_verdict_keys_its_stop_reason() -> None:
    for reply in replies():
        for verdict in verdicts(reply):
            if verdict.stop is not None:
                assert verdict.error_key is verdict.stop
