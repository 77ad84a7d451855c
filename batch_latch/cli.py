"""Command line: parse, build settings, call the core, turn the outcome into an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from batch_latch import __version__, settings, terminal, tracebacks
from batch_latch.errors import BatchLatchError, InternalError
from batch_latch.vocab import ExitCode

DESCRIPTION = (
    "Latch Fusebill customers to Geotab Reseller Customer IDs from a spreadsheet (.csv or "
    ".xlsx), safely: check it (run --dry-run), preview it (plan), send it (run), finish it "
    "(the same command again), and put it back (undo). The API key comes from "
    "FUSEBILL_API_KEY (environment or .env), never from the command line."
)

COMMANDS: dict[str, tuple[str, str]] = {
    # command: (one line for the list of commands, what its positional argument is)
    "run": ("latch every row of a spreadsheet (or check it with --dry-run)", "INPUT"),
    "plan": ("read every customer and report what a run would change; writes nothing", "INPUT"),
    "check": (
        "is everything ready? key, API, limits, customer list and INPUT, in at most five "
        "reads; writes nothing",
        "INPUT?",
    ),
    "undo": ("put back what this job's latches replaced", "OUT"),
    "status": ("the job at a glance, from its files alone (sends nothing)", "OUT"),
    "demo": ("rehearse plan, run and re-run on the bundled sample against the sandbox", ""),
    "sandbox": ("serve a local stand-in for the Fusebill API, for rehearsals", ""),
}
EPILOG = """\
environment:
  FUSEBILL_API_KEY     the API key, sent as "Authorization: Basic <key>" (required unless
                       --dry-run, undo --dry-run or status); also read from .env
  FUSEBILL_BASE_URL    the API (default https://secure.fusebill.com/v1; http:// only for
                       loopback hosts)
  HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY
                       proxies, as requests and curl use them
  REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE
                       a CA bundle (a proxy or network that inspects TLS)
  BATCH_LATCH_NOTIFY_URL
                       where --notify posts (a webhook)

exit codes:
  0    every row success or duplicate (dry run and plan: valid or duplicate)
  1    finished; some rows invalid, not_found or failed
  2    usage, configuration or input-file error; nothing sent
  3    stopped early (key rejected, API down, wrong URL, TLS, quota, --max-requests...);
       some rows pending: run the same command again
  70   internal error (please report it)
  130  Ctrl-C (129 SIGHUP, 143 SIGTERM): an orderly stop, reports written
"""
_ARGUMENT_HELP = {
    "INPUT": "the spreadsheet: a .csv or .xlsx file",
    "OUT": "the job folder (the --out of the run)",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of ours."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(*, sandbox_options: bool = True) -> argparse.ArgumentParser:
    """The whole parser; the sandbox's options (and its imports) only when they are needed."""
    parser = _Parser(
        prog="batch-latch",
        description=textwrap.fill(DESCRIPTION, 88),  # raw text: the epilog keeps its layout
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batch-latch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (text, argument) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        if argument == "INPUT":
            sub.add_argument("input", type=Path, metavar="INPUT", help=_ARGUMENT_HELP[argument])
        elif argument == "INPUT?":
            sub.add_argument(
                "input", type=Path, nargs="?", metavar="INPUT",
                help=_ARGUMENT_HELP["INPUT"] + " (optional: also checks the sheet)",
            )  # fmt: skip
        elif argument == "OUT":
            sub.add_argument("out", type=Path, metavar="OUT", help=_ARGUMENT_HELP[argument])
        settings.register(sub, name)
        if name != "sandbox":
            sub.add_argument(
                "--traceback",
                action="store_true",
                help="on an internal error, show its traceback instead of keeping it in a "
                f"file (also {tracebacks.DEBUG_VARIABLE}=1)",
            )
        if name == "demo":
            sub.add_argument(
                "--out", type=Path, default=Path("batch-latch-demo"),
                help="folder for the demo's job and reports (default: batch-latch-demo)",
            )  # fmt: skip
        if name == "sandbox" and sandbox_options:
            from batch_latch import sandbox

            sandbox.configure_parser(sub)
    return parser


def _redacted(text: str) -> str:
    """The one error line without the key or a proxy's credentials (the client's rule)."""
    from batch_latch.environment import redactor

    env: Mapping[str, str]
    try:
        env = settings.environment()
    except BatchLatchError:
        env = os.environ
    return redactor(env)(text)


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "demo":
        from batch_latch.commands import demo

        return demo.run(args.out)
    if command == "sandbox":
        from batch_latch import sandbox

        return sandbox.serve(args)
    chosen = settings.settings_from(args, command)
    if command == "status":
        from batch_latch.commands import status

        return status.show(chosen, sys.stdout)
    if command == "check":
        from batch_latch.commands import check

        return check.check(chosen, stdout=sys.stdout)
    from batch_latch.commands import job

    return job.run(chosen).exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Every line to stdout and stderr goes through a guarded writer (see ``terminal``): a
    reader gone away changes neither the outcome nor the exit code."""
    terminal.ensure_standard_fds()
    with terminal.guarded():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words:  # no command: the help, and exit 2 as argparse does for a usage error
        build_parser(sandbox_options=False).print_help(sys.stderr)
        return ExitCode.USAGE
    args = build_parser(sandbox_options=words[:1] == ["sandbox"]).parse_args(words)
    try:
        return int(_dispatch(args))
    except InternalError as exc:
        if tracebacks.wanted(getattr(args, "traceback", False)) and exc.__cause__ is not None:
            raise exc.__cause__ from None
        print(f"batch-latch: {_redacted(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except BatchLatchError as exc:
        print(f"batch-latch: error: {_redacted(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("batch-latch: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # never a traceback on the terminal: it goes to a file
        if tracebacks.wanted(getattr(args, "traceback", False)):
            raise
        kept = tracebacks.keep(exc, _redacted, None)
        print(f"batch-latch: {tracebacks.line(exc, _redacted, kept)}", file=sys.stderr)
        return ExitCode.INTERNAL
