"""``batch-latch sandbox``: the options (defined once), the config they make, and ``serve``."""

from __future__ import annotations

import argparse
import errno
import math
import signal
import sys
import threading
import time
import types
from typing import Any, NoReturn

from .app import Sandbox
from .config import (
    DEFAULT_API_KEY,
    DEFAULT_PORT,
    PROFILES,
    RESET_FORMATS,
    SandboxConfig,
    is_loopback,
    valid_key,
    valid_redirect,
)
from .customers import MAX_FUSEBILL_ID
from .listing import CustomerList, ListHeaders

_SHARE = "must be between 0 and 1"


def _bounded(kind: type[int] | type[float], low: float, high: float, what: str) -> Any:
    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value

    return convert


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _customer_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_FUSEBILL_ID:
        raise argparse.ArgumentTypeError(f"not a Fusebill customer id: {text!r}")
    return int(text)


def _error_status(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 400 <= int(text) <= 599:
        raise argparse.ArgumentTypeError(f"must be an HTTP error status 400..599, got {text!r}")
    return int(text)


def _id_status(text: str) -> tuple[int, int]:
    fid, sep, status = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ID:STATUS, got {text!r}")
    return _customer_id(fid.strip()), _error_status(status.strip())


def _api_key(text: str) -> str:
    if not valid_key(text):
        raise argparse.ArgumentTypeError("must be printable ASCII without spaces")
    return text


def _url(text: str) -> str:
    if not valid_redirect(text):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text


_share = _bounded(float, 0.0, 1.0, _SHARE)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's options to ``parser`` (the ``batch-latch sandbox`` subcommand)."""
    _listening_options(parser.add_argument_group("listening"))
    _customer_options(parser.add_argument_group("customers"))
    _limit_options(parser.add_argument_group("limits"))
    _fault_options(parser.add_argument_group("faults for rehearsals"))
    _network_options(parser.add_argument_group("a misbehaving network, for rehearsals"))


def _listening_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: loopback only (127.0.0.1, ::1 or localhost), the sandbox "
        "has no real security; any other address is refused (%(default)s)",
    )
    group.add_argument(
        "--port",
        type=_bounded(int, 0, 65535, "must be 0..65535"),
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (%(default)s)",
    )
    group.add_argument(
        "--api-key",
        type=_api_key,
        default=DEFAULT_API_KEY,
        metavar="K",
        help="the key clients must send as 'Authorization: Basic K'. This is the sandbox's own "
        "key, never a real Fusebill key (default: %(default)s)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (chain); needs --tls-key. The base URL "
        "becomes https://; clients must trust the issuing CA (e.g. REQUESTS_CA_BUNDLE)",
    )
    group.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    group.add_argument(
        "--log",
        metavar="FILE",
        help="append every request to FILE as JSON lines (flushed per line)",
    )


def _customer_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--preset",
        metavar="FILE",
        help="CSV with the header fusebillId,geotabId: these customers start latched, so a "
        "rehearsal meets existing links (every id must be a sandbox customer)",
    )
    group.add_argument(
        "--hide-geotab-id",
        action="store_true",
        help="customer reads (GET /customers/ID) leave out the geotabId key, as an API that "
        "does not expose it would",
    )
    group.add_argument(
        "--customer-list",
        choices=tuple(mode.value for mode in CustomerList),
        default=CustomerList.FULL.value,
        help="the customer list (GET /customers?query=id:...): full as documented; "
        "ignores-filter pages through every customer whatever was asked; no-geotab leaves "
        "geotabId out of its objects; missing has no such route (ASP.NET's 404) "
        "(%(default)s)",
    )
    group.add_argument(
        "--list-headers",
        choices=tuple(style.value for style in ListHeaders),
        default=ListHeaders.DOCS.value,
        help="how the customer list writes its paging headers: docs as Fusebill's page says "
        "(X-MaxPageIndex the total of pages, X-Count the total of results); index "
        "(X-MaxPageIndex the last page's index, X-Count this page's objects); none (no paging "
        "headers) (%(default)s)",
    )


def _limit_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default="live",
        help="Fusebill account limits: live 1000/min 180000/day, sandbox 50/5000, "
        "testdrive 10/500 (%(default)s)",
    )
    group.add_argument(
        "--rate-limit",
        type=positive_float,
        metavar="R",
        help="replace the minute limit by a token bucket of R requests per second "
        "(bursts up to max(1, R))",
    )
    group.add_argument(
        "--day-limit",
        type=_bounded(int, 1, 10**9, "must be from 1 to 1000000000"),
        metavar="N",
        help="replace the profile's daily limit by N requests, for quick quota rehearsals",
    )
    group.add_argument(
        "--retry-after",
        nargs="?",
        const=True,
        type=_bounded(int, 0, 10**9, "must be 0..1000000000 seconds"),
        metavar="SECONDS",
        help="send Retry-After on 429 answers (Fusebill documents none): alone, the seconds "
        "until the limit frees; with SECONDS, always that value (e.g. 0 or 86400)",
    )
    group.add_argument(
        "--minute-seconds",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="length of the minute window in seconds, for quick rehearsals (%(default)g)",
    )
    group.add_argument(
        "--reset-format",
        choices=RESET_FORMATS,
        default="iso",
        help="format of the X-Rate-Limit-Reset-* headers (%(default)s)",
    )


def _fault_options(group: argparse._ArgumentGroup) -> None:
    millis = _bounded(int, 0, 600_000, "must be 0..600000")
    group.add_argument(
        "--latency-ms",
        type=millis,
        default=0,
        metavar="N",
        help="wait N ms before answering every request (%(default)s)",
    )
    group.add_argument(
        "--fail-rate",
        type=_share,
        default=0.0,
        metavar="F",
        help="share of requests answered 500/502/503 without applying anything (%(default)g)",
    )
    group.add_argument(
        "--drop-rate",
        type=_share,
        default=0.0,
        metavar="F",
        help="share of requests applied, then hung up on without an answer (%(default)g)",
    )
    group.add_argument(
        "--stall-first-ms",
        type=millis,
        default=0,
        metavar="N",
        help="apply the first latch of each customer, then answer N ms late (%(default)s)",
    )
    group.add_argument(
        "--relatch-status",
        type=_error_status,
        metavar="STATUS",
        help="answer STATUS (e.g. 409) when a customer is latched again to the geotabId it has "
        "(default: 200, idempotent)",
    )
    _id_option(
        group,
        "--mismatch-id",
        "latching this customer stores and answers a different geotabId (repeatable)",
    )
    group.add_argument(
        "--force-status",
        type=_id_status,
        action="append",
        metavar="ID:STATUS",
        help="latch requests for ID always get STATUS, nothing applied (repeatable)",
    )
    group.add_argument("--seed", type=int, help="seed for the random faults (reproducible runs)")


def _network_options(group: argparse._ArgumentGroup) -> None:
    rates = (
        (
            "--html-200-rate",
            "share of latches answered 200 with a captive portal's HTML page; nothing applied",
        ),
        ("--empty-200-rate", "share of latches answered 200 with an empty body; nothing applied"),
        (
            "--applied-then-504-rate",
            "share of latches applied, then answered 504 by a 'load "
            "balancer' (rehearses reading back)",
        ),
    )
    for flag, text in rates:
        group.add_argument(flag, type=_share, default=0.0, metavar="F", help=text + " (0)")
    group.add_argument(
        "--drip",
        type=_bounded(float, 0.0, 60.0, "must be 0..60 seconds"),
        default=0.0,
        metavar="SECONDS",
        help="send every answer's body one byte at a time, SECONDS apart (a stalling link)",
    )
    _id_option(group, "--drip-id", "drip only the answers about this customer (repeatable)")
    group.add_argument(
        "--redirect-to",
        type=_url,
        metavar="URL",
        help="answer every request '301 Moved Permanently' to URL, nothing applied "
        "(a wrong or moved base URL)",
    )


def _id_option(group: argparse._ArgumentGroup, flag: str, text: str) -> None:
    group.add_argument(flag, type=_customer_id, action="append", metavar="ID", help=text)


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The config ``configure_parser``'s options describe; missing attributes take defaults."""
    d = SandboxConfig()

    def get(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        return default if value is None else value

    retry_after = get("retry_after", None)
    return SandboxConfig(
        host=get("host", d.host),
        port=get("port", DEFAULT_PORT),
        api_key=get("api_key", d.api_key),
        profile=get("profile", d.profile),
        rate_limit=get("rate_limit", None),
        day_limit=get("day_limit", None),
        retry_after=retry_after is not None,
        retry_after_seconds=None if retry_after in (None, True) else retry_after,
        minute_seconds=get("minute_seconds", d.minute_seconds),
        reset_format=get("reset_format", d.reset_format),
        latency_ms=get("latency_ms", 0),
        fail_rate=get("fail_rate", 0.0),
        drop_rate=get("drop_rate", 0.0),
        stall_first_ms=get("stall_first_ms", 0),
        relatch_status=get("relatch_status", None),
        mismatch_ids=frozenset(get("mismatch_id", ())),
        force_status=dict(get("force_status", ())),
        seed=get("seed", None),
        log_path=get("log", None),
        preset=get("preset", None),
        hide_geotab_id=bool(get("hide_geotab_id", False)),
        customer_list=CustomerList(get("customer_list", d.customer_list)),
        list_headers=ListHeaders(get("list_headers", d.list_headers)),
        tls_cert=get("tls_cert", None),
        tls_key=get("tls_key", None),
        html_200_rate=get("html_200_rate", 0.0),
        empty_200_rate=get("empty_200_rate", 0.0),
        applied_then_504_rate=get("applied_then_504_rate", 0.0),
        drip_seconds=get("drip", 0.0),
        drip_ids=frozenset(get("drip_id", ())),
        redirect_to=get("redirect_to", None),
    )


class _Stop(Exception):
    """Raised by the signal handler to leave the idle loop."""


def _raise_stop(signum: int, frame: types.FrameType | None) -> NoReturn:
    raise _Stop


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the one stdout line tells scripts where to connect."""
    sandbox = _started(args)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous: list[Any] = []
    in_main = threading.current_thread() is threading.main_thread()
    try:
        if in_main:
            previous = [signal.signal(sig, _raise_stop) for sig in handled]
        print(_listening_line(sandbox), flush=True)
        while True:
            time.sleep(3600)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        if in_main:
            for sig in handled:
                signal.signal(sig, signal.SIG_IGN)
        sandbox.stop()
        if in_main:
            for sig, old in zip(handled, previous, strict=False):
                signal.signal(sig, old)
    return 0


def _listening_line(sandbox: Sandbox) -> str:
    """The start line: where to connect, the profile, and how many customers start latched."""
    c = sandbox.config
    latched = len(c.preset_pairs)
    customers = "customer starts" if latched == 1 else "customers start"
    return (
        f"batch-latch sandbox listening on {sandbox.base_url} (profile {c.profile}); "
        f"{latched} preset {customers} latched"
    )


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 2: a configuration the sandbox cannot serve, as the tool's."""
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(2)


def _started(args: argparse.Namespace) -> Sandbox:
    """A running sandbox, or exit 2 with one stderr line saying what is wrong."""
    host = getattr(args, "host", None)
    if host is not None and not is_loopback(host):
        _fail(
            f"batch-latch sandbox: --host {host} is not a loopback address: the sandbox has no "
            "real security, so it listens on 127.0.0.1, ::1 or localhost only"
        )
    try:
        config = config_from_args(args)
        return Sandbox(config).start()
    except ValueError as exc:  # a bad preset or TLS file included: one line, no traceback
        _fail(f"batch-latch sandbox: {_one_line(str(exc))}")
    except OSError as exc:
        if exc.filename is not None:
            reason = exc.strerror or str(exc)
            _fail(f"batch-latch sandbox: cannot open the log {exc.filename}: {reason}")
        _fail(_bind_error(args, exc))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _bind_error(args: argparse.Namespace, exc: OSError) -> str:
    where = f"{getattr(args, 'host', '127.0.0.1')}:{getattr(args, 'port', DEFAULT_PORT)}"
    if exc.errno == errno.EADDRINUSE:
        return f"batch-latch sandbox: cannot listen on {where}: the port is already in use"
    reason = exc.strerror or str(exc)
    return f"batch-latch sandbox: cannot listen on {where}: {reason}"
