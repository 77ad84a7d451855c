"""``batch-latch demo``: the bundled sample through the real pipeline, against the sandbox.

Nothing is faked but Fusebill itself: the sandbox listens on a free loopback port and the
run goes through the same loader, validator, workers, throttle, checkpoint and reports as
a real one. No key, no network.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from batch_latch import checkpoint, job
from batch_latch.config import RunSettings
from batch_latch.sandbox import DEFAULT_API_KEY, Sandbox, SandboxConfig

SAMPLE = "latch-sample.csv"


def sample_path() -> Path:
    """The sample shipped inside the package (``sample_data/`` in the source tree)."""
    return Path(str(resources.files("batch_latch.sample_data").joinpath(SAMPLE)))


def run(out: Path) -> int:
    source = sample_path()
    print(f"Demo: {source.name} against a local sandbox (no key, no network needed)")
    # Each demo starts a fresh sandbox, so an earlier demo's checkpoint means nothing.
    (out / checkpoint.FILENAME).unlink(missing_ok=True)
    with Sandbox(SandboxConfig(api_key=DEFAULT_API_KEY)) as sandbox:
        print(f"Sandbox listening on {sandbox.base_url}", flush=True)
        settings = RunSettings(
            input=source,
            out=out,
            progress=sys.stderr.isatty(),
            base_url=sandbox.base_url,
            api_key=SecretStr(DEFAULT_API_KEY),
        )
        result = job.run(settings)
    print(
        f"Done. A real run would exit {result.exit_code}: the sample has invalid rows and an "
        "unknown customer on purpose. Open the reports above to see why each row ended as it did."
    )
    return 0 if result.exit_code in (job.EXIT_OK, job.EXIT_ROW_PROBLEMS) else result.exit_code
