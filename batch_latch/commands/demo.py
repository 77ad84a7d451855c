"""``batch-latch demo``: the bundled sample through the real pipeline, against the sandbox.

Nothing is faked but Fusebill itself: the sandbox listens on a free loopback port and the
commands go through the same loader, validator, workers, throttle, ledger and reports
as real ones. Some sample customers start latched (``latch-sample-preset.csv``), so the
plan shows every kind of change: new, unchanged, and a re-latch (which ``run --plan`` then
writes: the reviewed plan is the approval). Between
the plan and ``run --plan latest`` another integration changes one planned customer, so the
run writes what was reviewed and refuses that one as ``stale_plan``. No key, no network.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from batch_latch.commands import job
from batch_latch.jobfolder import history, ledger
from batch_latch.sandbox import DEFAULT_API_KEY, Sandbox, SandboxConfig
from batch_latch.settings import Settings
from batch_latch.vocab import ExitCode, RunKind

SAMPLE = "latch-sample.csv"
PRESET = "latch-sample-preset.csv"
#: A customer the plan shows as new, changed by "someone else" after the review.
CHANGED_SINCE = (1000004, "SET-BY-ANOTHER-INTEGRATION")
STEPS = (
    (RunKind.PLAN, "1. plan: read every customer, change nothing"),
    (RunKind.RUN, "2. run --plan latest: write what the plan showed; refuse what changed since"),
    (RunKind.RUN, "3. re-run: nothing settled is sent again"),
    (RunKind.UNDO, "4. undo --dry-run: what undo would put back (sends nothing)"),
)


def sample_path(name: str = SAMPLE) -> Path:
    """A file shipped inside the package (``sample_data/`` in the source tree)."""
    return Path(str(resources.files("batch_latch.sample_data").joinpath(name)))


def run(out: Path) -> int:
    source = sample_path()
    print(f"Demo: {source.name} against a local sandbox (no key, no network needed)")
    # Each demo starts a fresh sandbox, so an earlier demo's job.db means nothing.
    for name in (ledger.FILENAME, f"{ledger.FILENAME}-wal", f"{ledger.FILENAME}-shm"):
        (out / name).unlink(missing_ok=True)
    config = SandboxConfig(api_key=DEFAULT_API_KEY, preset=str(sample_path(PRESET)))
    results: list[job.JobResult] = []
    with Sandbox(config) as sandbox:
        print(f"Sandbox listening on {sandbox.base_url}", flush=True)
        for step, (kind, title) in enumerate(STEPS):
            if step == 1:
                sandbox.set_geotab_id(*CHANGED_SINCE)
                print(
                    f"\n(meanwhile another integration sets customer {CHANGED_SINCE[0]} to "
                    f"{CHANGED_SINCE[1]!r})",
                    flush=True,
                )
            print(f"\n== {title}", flush=True)
            settings = Settings(
                out=out,
                kind=kind,
                input=None if kind is RunKind.UNDO else source,
                dry_run=kind is RunKind.UNDO,
                workers=4,
                progress=sys.stderr.isatty(),
                base_url=sandbox.base_url,
                api_key=SecretStr(DEFAULT_API_KEY),
                plan="latest" if step == 1 else None,
            )
            results.append(job.run(settings))
    # The last word is about the run: OUT/ shows the re-run's reports, not the undo listing.
    history.publish(out, results[2].paths, source)
    codes = [r.exit_code for r in results]
    print(
        f"\nDone. The run exits {int(codes[1])}: the sample has invalid rows, an unknown "
        "customer and a customer changed since the plan on purpose; open the reports in "
        f"{out}/ (the re-run's; each command's own are in {out}/runs/) to see why each row "
        f"ended as it did. On a real job, `batch-latch undo {out}` puts back what the run "
        "changed."
    )
    return 0 if codes[1] in (ExitCode.OK, ExitCode.ROW_PROBLEMS) else int(codes[1])
