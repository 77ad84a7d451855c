"""``--notify``: the webhook poster against real loopback receivers (``tests.netdoubles``).

Every receiver is a real HTTP server on 127.0.0.1; what it received is read back from its
``seen`` list after ``send`` returned (the server records a request before answering it, so
nothing here waits on timing). The webhook's token sits in the URL's path and query and the
API key in the summary: neither may show up in any stderr line, and the key in no byte sent.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import SecretStr

from batch_latch.errors import ConfigError
from batch_latch.notify import (
    VARIABLE,
    Event,
    Notifier,
    body_for,
    check_url,
    event_for,
    notify_url,
    shown,
    text_for,
)
from tests import netdoubles as nd

KEY = "sk_live_SECRET123"
TOKEN = "T0KENxyzzy9f8e7d6c"
SIG = "SIGsecret4242abcd"
PATH = f"/services/T000/B000/{TOKEN}?sig={SIG}"
JOB = "/data/customers-latch"
SUMMARY: dict[str, Any] = {
    "input": "customers.csv",
    "kind": "run",
    "rows": 1_234_567,
    "counts": {"success": 1_000_000, "failed": 1, "pending": 234_566},
    "requests": 1_000_001,
    "exit_code": 3,
    "stop_reason": "daily_quota",
    "host": "ops-box",
    # a key that leaked into a message must not leave with the notification
    "stop_message": f"Stopped: Authorization Basic {KEY} was refused",
}


def notifier(url: str, **kwargs: Any) -> tuple[Notifier, io.StringIO]:
    err = io.StringIO()
    return Notifier(url, env=kwargs.pop("env", {}), key=KEY, stderr=err, **kwargs), err


def received(seen: nd.Seen) -> str:
    """Every part of a request a receiver can read, as one text to grep."""
    headers = "\n".join(f"{k}: {v}" for k, v in seen.headers.items())
    return f"{seen.method} {seen.path}\n{headers}\n\n{seen.body.decode('utf-8')}"


def one_line(err: io.StringIO) -> str:
    """The stderr of a failed notification: exactly one line, no token, no key."""
    text = err.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    for secret in (TOKEN, SIG, KEY, "/services", "T000"):
        assert secret not in text
    return text.strip()


def sequence(*statuses: int) -> nd.Respond:
    """Answer the n-th request with ``statuses[n]`` (the last one from then on)."""
    answers = list(statuses)

    def respond(exchange: nd.Exchange) -> None:
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        exchange.send_json(status, {"ok": status < 300})

    return respond


@pytest.fixture
def no_stray_output(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Nothing reaches the process's own stdout or stderr: lines go to the given stderr."""
    yield
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- what the receiver gets ------------------------------------------------------------------


@pytest.mark.parametrize("event", list(Event))
def test_every_event_posts_the_body_slack_and_teams_show(
    event: Event, no_stray_output: None
) -> None:
    with nd.Loopback(nd.json_answer(200, {"ok": True})) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(event, JOB, SUMMARY) is True
    assert err.getvalue() == ""
    [seen] = server.seen
    assert seen.method == "POST" and seen.path == PATH
    assert seen.headers["content-type"].startswith("application/json")
    body = json.loads(seen.body)
    assert set(body) == {"text", "event", "job", "summary"}
    assert body["event"] == event.value and body["job"] == JOB
    assert isinstance(body["text"], str) and "\n" not in body["text"]
    assert JOB in body["text"] and "1,234,567 rows" in body["text"]
    expected = {**SUMMARY, "stop_message": "Stopped: Authorization Basic [redacted] was refused"}
    assert body["summary"] == expected


def test_the_key_is_in_no_byte_sent_and_no_authorization_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"  # requests would send these if it read ~/.netrc
    netrc.write_text("machine 127.0.0.1 login other password stolen\ndefault login a password b\n")
    os.chmod(netrc, stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    summary = {**SUMMARY, "input": f"{KEY}.csv", "counts": {KEY: 1}}
    with nd.Loopback(nd.json_answer(204, {})) as server:
        sender = Notifier(
            server.url + PATH, env=dict(os.environ), key=SecretStr(KEY), stderr=io.StringIO()
        )
        assert sender.send(Event.FINISHED, f"/jobs/{KEY}", summary)
    [seen] = server.seen
    assert "authorization" not in seen.headers and "proxy-authorization" not in seen.headers
    everything = received(seen)
    assert KEY not in everything and "stolen" not in everything
    assert "[redacted]" in json.loads(seen.body)["text"]


def test_a_path_or_odd_value_in_the_summary_is_sent_as_text() -> None:
    with nd.Loopback(nd.json_answer(200, {})) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(Event.FINISHED, Path(JOB), {**SUMMARY, "out": Path(JOB)})
    assert json.loads(server.seen[0].body)["summary"]["out"] == JOB
    assert err.getvalue() == ""


# --- failures: one line, never an exception --------------------------------------------------


def test_a_receiver_answering_500_is_tried_twice_then_one_line(no_stray_output: None) -> None:
    with nd.Loopback(nd.json_answer(500, {"error": "boom"})) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(Event.STOPPED, JOB, SUMMARY) is False
    assert len(server.seen) == 2
    assert one_line(err) == (
        f"notification to http://127.0.0.1:{server.port}/… failed: HTTP 500 (tried twice)"
    )


def test_a_retry_that_gets_through_prints_nothing() -> None:
    with nd.Loopback(sequence(503, 200)) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(Event.WAITING, JOB, SUMMARY) is True
    assert len(server.seen) == 2 and err.getvalue() == ""


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_a_4xx_is_not_retried(status: int) -> None:
    with nd.Loopback(nd.json_answer(status, {})) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
    assert len(server.seen) == 1
    assert one_line(err).endswith(f"failed: HTTP {status}")


def test_a_redirect_is_not_followed() -> None:
    with nd.Loopback(nd.json_answer(200, {})) as elsewhere:
        target = f"{elsewhere.url}/catch/{TOKEN}"
        with nd.Loopback(nd.redirect(302, target)) as server:
            sender, err = notifier(server.url + PATH)
            assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
    assert len(server.seen) == 1 and elsewhere.seen == []
    assert one_line(err).endswith("failed: HTTP 302 (a redirect: not followed)")


def test_a_dead_port_is_one_line_and_fast(no_stray_output: None) -> None:
    with nd.closed_port() as port:
        sender, err = notifier(f"http://127.0.0.1:{port}{PATH}")
        started = time.monotonic()
        assert sender.send(Event.INTERRUPTED, JOB, SUMMARY) is False
        took = time.monotonic() - started
    assert took < 5.0
    line = one_line(err)
    assert line == f"notification to http://127.0.0.1:{port}/… failed: connection refused " + (
        "(tried twice)"
    )


@pytest.mark.slow
def test_a_notification_takes_at_most_10_s_by_default() -> None:
    sender, _ = notifier("https://hooks.example.test" + PATH)
    assert sender.deadline == 10.0  # the contract's bound (the CLI's end to end: unattended)


def test_a_receiver_that_never_answers_is_cut_at_the_deadline(no_stray_output: None) -> None:
    with nd.Loopback(nd.hang) as server:
        sender, err = notifier(server.url + PATH, deadline=1.0)
        started = time.monotonic()
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
        took = time.monotonic() - started
    # Uncut, the receiver would hold it its whole 10 s (nd.SERVER_WAIT); 8 s leaves a loaded
    # machine room and still tells the two apart.
    assert 0.9 <= took < 8.0, took
    assert one_line(err).endswith("failed: no answer within 1 s")
    assert len(server.seen) == 1  # the time is spent: no retry after a timeout


@pytest.mark.slow
def test_a_receiver_that_dribbles_is_cut_at_the_deadline_not_per_read() -> None:
    # a byte every 50 ms never trips a per-read timeout; only an overall deadline ends it
    with nd.Loopback(nd.drip_head(0.05)) as server:
        sender, err = notifier(server.url + PATH, deadline=2.0)
        started = time.monotonic()
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
        took = time.monotonic() - started
    assert 1.5 <= took < 8.0, took  # uncut, the drip goes on for over an hour
    assert one_line(err).endswith("failed: no answer within 2 s")


def test_a_stderr_that_is_gone_is_not_an_error() -> None:
    err = io.StringIO()
    err.close()  # as after SIGHUP: writing raises ValueError
    with nd.closed_port() as port:
        sender = Notifier(f"http://127.0.0.1:{port}{PATH}", key=KEY, stderr=err)
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False


def test_a_summary_that_cannot_be_sent_is_one_line() -> None:
    with nd.Loopback(nd.json_answer(200, {})) as server:
        sender, err = notifier(server.url + PATH)
        assert sender.send(Event.FINISHED, JOB, {"rows": "many"}) is False
    assert server.seen == []
    assert one_line(err).endswith("failed: could not be sent (ValueError)")


# --- proxies and CA bundles, as for Fusebill -------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_https_through_a_connect_proxy_with_a_ca_bundle_from_env(
    ca: trustme.CA, tmp_path: Path
) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with (
        nd.Loopback(nd.json_answer(200, {}), tls=tls, host="localhost") as server,
        nd.ConnectProxy() as proxy,
    ):
        env = {"HTTPS_PROXY": proxy.url, "REQUESTS_CA_BUNDLE": nd.ca_file(ca, tmp_path)}
        sender, err = notifier(server.url + PATH, env=env)
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is True, err.getvalue()
    assert [r.split()[:2] for r in proxy.requests] == [["CONNECT", f"localhost:{server.port}"]]
    assert len(server.seen) == 1
    assert all(TOKEN.encode() not in head for head in proxy.heads)  # the tunnel hides the path


def test_an_unknown_certificate_is_one_line(ca: trustme.CA) -> None:
    tls = nd.tls_server_context(ca, "localhost")
    with nd.Loopback(nd.json_answer(200, {}), tls=tls, host="localhost") as server:
        sender, err = notifier(server.url + PATH)  # the CA is not trusted
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
    assert "certificate verify failed" in one_line(err)


def test_a_missing_ca_bundle_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with nd.Loopback(nd.json_answer(200, {})) as server:
        sender, err = notifier(server.url + PATH, env={"REQUESTS_CA_BUNDLE": str(missing)})
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
    assert server.seen == []
    assert f"REQUESTS_CA_BUNDLE names {missing}" in one_line(err)


def test_the_proxy_variables_come_from_env_and_no_proxy_is_honoured() -> None:
    with nd.closed_port() as dead, nd.Loopback(nd.json_answer(200, {})) as server:
        proxy = {"HTTP_PROXY": f"http://user:proxypass@127.0.0.1:{dead}"}
        sender, err = notifier(server.url + PATH, env=proxy)
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
        line = one_line(err)
        assert "proxy" in line and "proxypass" not in line and server.seen == []
        bypass, err2 = notifier(server.url + PATH, env={**proxy, "NO_PROXY": "127.0.0.1"})
        assert bypass.send(Event.FINISHED, JOB, SUMMARY) is True, err2.getvalue()
    assert len(server.seen) == 1


def test_an_unusable_proxy_url_is_one_line_without_its_password() -> None:
    """v3: one redaction, the client's: the proxy password is in no line and no body."""
    with nd.Loopback(nd.json_answer(200, {})) as server:
        env = {"HTTP_PROXY": "http://puser:pr0xyPW@127.0.0.1:99999"}
        sender, err = notifier(server.url + PATH, env=env)
        assert sender.send(Event.FINISHED, JOB, SUMMARY) is False
        assert "0xyPW" not in one_line(err) and server.seen == []
        assert sender._redactor()("Failed to parse: http://puser:pr0xyPW@h (pr0xyPW)") == (
            "Failed to parse: http://[redacted]@h ([redacted])"
        )


# --- the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"http://hooks.example.com{PATH}",  # plain http to a real host
        f"ftp://hooks.example.com{PATH}",
        f"hooks.slack.com{PATH}",  # no scheme: the token must not be echoed back
        f"https://opsadmin:pa55word@hooks.example.com{PATH}",
        f"https://:pa55word@hooks.example.com{PATH}",
        f"https://opsadmin:pa55/word@hooks.example.com{PATH}",  # cut at the "/"
        f"https://opsadmin:pa55#word@hooks.example.com{PATH}",
        f"https://opsadmin:pa55?word@hooks.example.com{PATH}",
        f"https://hooks.example.com:port{PATH}",
        f"http://[::1{PATH}",
        f"https://{PATH}",
        f"https://hooks.example.com/a b/{TOKEN}",
        f"https://hooks.example.com/\n{TOKEN}",
        "",
        "   ",
    ],
)
def test_a_url_that_may_not_be_used_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_url(url)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--notify (or {VARIABLE})")
    for secret in (TOKEN, SIG, "pa55", "opsadmin", "/services"):
        assert secret not in message
    with pytest.raises(ConfigError):
        Notifier(url)


def test_the_refusals_say_what_to_fix() -> None:
    def refusal(url: str) -> str:
        with pytest.raises(ConfigError) as caught:
            check_url(url)
        return str(caught.value)

    assert refusal(f"http://hooks.example.com{PATH}").endswith(
        "must use https:// (plain http only for localhost): http://hooks.example.com/…"
    )
    assert "user name or password" in refusal(f"https://u:p@hooks.example.com{PATH}")
    assert "https://hooks.example.com/…" in refusal(f"https://u:p@hooks.example.com{PATH}")
    assert "not a valid URL" in refusal(f"https://hooks.example.com:port{PATH}")


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.slack.com{PATH}",
        f"HTTPS://Hooks.Example.com:8443{PATH}",
        f"http://localhost:8080{PATH}",
        f"http://127.0.0.1{PATH}",
        f"http://127.10.20.30:9{PATH}",
        f"http://[::1]:9{PATH}",
        f"  https://outlook.office.com/webhook/{TOKEN}  ",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert check_url(url) == url.strip()


def test_shown_is_scheme_and_host_only() -> None:
    assert shown(f"https://hooks.slack.com{PATH}") == "https://hooks.slack.com/…"
    assert (
        shown(f"https://u:p@Hooks.Example.com:8443?sig={SIG}") == "https://hooks.example.com:8443/…"
    )
    assert shown(f"https://hooks.example.com#{TOKEN}") == "https://hooks.example.com/…"
    assert shown(f"hooks.slack.com{PATH}") == "the notify URL"
    assert shown("") == "the notify URL"
    assert shown("https://opsadmin:pa55/word@hooks.example.com/x") == "https://…"
    assert shown("https://[::1]:9/x") == "https://[::1]:9/…"


def test_repr_shows_no_token() -> None:
    sender = Notifier(f"https://hooks.slack.com{PATH}", key=KEY)
    assert repr(sender) == "Notifier('https://hooks.slack.com/…')"
    assert TOKEN not in repr(sender) and KEY not in repr(sender)


def test_notify_url_option_wins_and_an_empty_variable_is_unset() -> None:
    url = f"https://hooks.slack.com{PATH}"
    assert notify_url(None, {}) is None
    assert notify_url(None, {VARIABLE: "  "}) is None
    assert notify_url(None, {VARIABLE: url}) == url
    assert notify_url(url, {VARIABLE: "http://bad.example.com/x"}) == url
    with pytest.raises(ConfigError):
        notify_url(None, {VARIABLE: f"http://hooks.example.com{PATH}"})
    with pytest.raises(ConfigError):
        notify_url("", {VARIABLE: url})  # --notify "" is a mistake, not "off"


# --- the line a person reads -----------------------------------------------------------------


def test_event_for_exit_codes() -> None:
    assert [event_for(c) for c in (0, 1, 3, 130, 129, 143)] == [
        Event.FINISHED,
        Event.FINISHED,
        Event.STOPPED,
        Event.INTERRUPTED,
        Event.INTERRUPTED,
        Event.INTERRUPTED,
    ]


def test_the_text_of_a_quota_stop() -> None:
    text = text_for(Event.STOPPED, JOB, SUMMARY)
    assert text == (
        f"batch-latch run in {JOB} on ops-box stopped early (daily quota). 1,234,567 rows: "
        "1,000,000 success, 1 failed, 234,566 pending; 1,000,001 requests sent. "
        "Next: run the same command again after the quota resets (or --wait-for-quota)."
    )


def test_singular_and_plural() -> None:
    one = {"kind": "run", "rows": 1, "counts": {"success": 1}, "requests": 1, "exit_code": 0}
    assert text_for(Event.FINISHED, JOB, one) == (
        f"batch-latch run in {JOB} finished. 1 row: 1 success; 1 request sent. "
        "Next: nothing left to do."
    )
    two = {**one, "rows": 2, "counts": {"success": 2}, "requests": 2}
    assert "2 rows: 2 success; 2 requests sent" in text_for(Event.FINISHED, JOB, two)


def test_what_to_do_next() -> None:
    finished = {**SUMMARY, "exit_code": 1, "stop_reason": None, "counts": {"invalid": 3}}
    assert text_for(Event.FINISHED, JOB, finished).endswith(
        f"Next: fix the rows in failed.csv and feed it back with --out {JOB}."
    )
    assert "finished with rows to look at" in text_for(Event.FINISHED, JOB, finished)
    stopped = text_for(Event.INTERRUPTED, JOB, {**SUMMARY, "exit_code": 143})
    assert "was interrupted (SIGTERM)" in stopped
    assert stopped.endswith("Next: resume with the same command.")
    key = text_for(Event.STOPPED, JOB, {**SUMMARY, "stop_reason": "key_rejected"})
    assert "check FUSEBILL_API_KEY" in key
    odd = text_for(Event.STOPPED, JOB, {**SUMMARY, "stop_reason": "something_new"})
    assert "see the command's stderr" in odd
    plan = {"kind": "plan", "rows": 5, "counts": {"valid": 5}, "exit_code": 0}
    assert "--plan latest" in text_for(Event.FINISHED, JOB, plan)


def test_a_wait_says_until_when_in_utc() -> None:
    until = datetime(2025, 3, 1, 0, 0, 30, tzinfo=timezone.utc)
    text = text_for(Event.WAITING, JOB, SUMMARY, until=until)
    assert "is waiting for the daily quota to reset (until 2025-03-01 00:00 UTC)" in text
    assert text.endswith("Next: nothing to do: it goes on by itself after the reset.")


def test_the_text_is_one_line_whatever_the_summary_holds() -> None:
    odd = {"kind": "run\nplan", "host": "a\r\nb", "counts": {}}
    text = text_for(Event.FINISHED, "/jobs/with\nnewline", odd)
    assert "\n" not in text and "\r" not in text
    assert "0 rows" in text_for(Event.FINISHED, JOB, {})


def test_body_for_is_the_contract_shape() -> None:
    body = body_for(Event.WAITING, Path(JOB), SUMMARY)
    assert list(body) == ["text", "event", "job", "summary"]
    assert body["event"] == "waiting" and body["job"] == JOB and body["summary"] == SUMMARY
    json.dumps(body)
