"""Command line: parse, build settings, call the core, turn the outcome into an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from batch_latch import __version__, config
from batch_latch.errors import BatchLatchError

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of ours, not a problem with the input or the API


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of ours."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def build_parser(*, sandbox_options: bool = True) -> argparse.ArgumentParser:
    """The whole parser; the sandbox's options (and its imports) only when they are needed."""
    parser = _Parser(prog="batch-latch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"batch-latch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="latch every row of a spreadsheet (or --dry-run)")
    run.add_argument("input", type=Path, metavar="INPUT", help=".csv or .xlsx file")
    run.add_argument("--dry-run", action="store_true", help="validate and report; send nothing")
    run.add_argument("--out", type=Path, help="folder for reports and checkpoint")
    run.add_argument("--sheet", help="worksheet of an .xlsx (default: the first)")
    run.add_argument("--fusebill-column", metavar="NAME", help="header of the fusebillId column")
    run.add_argument("--geotab-column", metavar="NAME", help="header of the geotabId column")
    run.add_argument("--rate", type=_positive_float, default=10.0, help="requests/s (10)")
    run.add_argument("--workers", type=_positive_int, default=8, help="requests in flight (8)")
    run.add_argument("--max-attempts", type=_positive_int, default=5, help="per row (5)")
    run.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds (30)")
    run.add_argument("--max-requests", type=_positive_int, help="stop after N requests")
    run.add_argument("--fresh", action="store_true", help="ignore the checkpoint; start over")
    run.add_argument("--retry-not-found", action="store_true", help="send earlier 404s again")
    run.add_argument("--allow-shared-geotab-id", action="store_true")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    demo = commands.add_parser("demo", help="rehearse on the bundled sample against the sandbox")
    demo.add_argument("--out", type=Path, default=Path("batch-latch-demo"), help="report folder")

    sandbox_parser = commands.add_parser("sandbox", help="serve a local stand-in for Fusebill")
    if sandbox_options:
        from batch_latch import sandbox

        sandbox.configure_parser(sandbox_parser)
    return parser


def settings_from(args: argparse.Namespace) -> config.RunSettings:
    source: Path = args.input
    out = args.out or source.parent / f"{source.stem}-latch"
    base_url, key = config.DEFAULT_BASE_URL, None
    if not args.dry_run:
        env = config.environment()
        base_url = config.base_url(env)
        key = config.api_key(env)
    return config.RunSettings(
        input=source,
        out=out,
        dry_run=args.dry_run,
        sheet=args.sheet,
        fusebill_column=args.fusebill_column,
        geotab_column=args.geotab_column,
        rate=args.rate,
        workers=args.workers,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        max_requests=args.max_requests,
        fresh=args.fresh,
        retry_not_found=args.retry_not_found,
        allow_shared_geotab_id=args.allow_shared_geotab_id,
        progress=not args.no_progress and sys.stderr.isatty(),
        base_url=base_url,
        api_key=key,
    )


def _redact_key(text: str) -> str:
    try:
        key = config.environment().get(config.KEY_VARIABLE, "")
    except BatchLatchError:
        key = os.environ.get(config.KEY_VARIABLE, "")
    return text.replace(key, "[redacted]") if key.strip() else text


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(sandbox_options=words[:1] == ["sandbox"]).parse_args(words)
    try:
        if args.command == "run":
            from batch_latch import job

            return job.run(settings_from(args)).exit_code
        if args.command == "demo":
            from batch_latch import demo

            return demo.run(args.out)
        from batch_latch import sandbox

        return sandbox.serve(args)
    except BatchLatchError as exc:
        print(f"batch-latch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("batch-latch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: one line, and the key is never in it
        text = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:300]
        text = _redact_key(text)
        print(f"batch-latch: internal error (please report it): {text}", file=sys.stderr)
        return EXIT_INTERNAL
