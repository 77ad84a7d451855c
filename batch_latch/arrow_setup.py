"""Process-wide Arrow setup, done once at the entry point (never on import)."""

from __future__ import annotations

import os

import pyarrow as pa


def choose_memory_pool() -> None:
    """jemalloc (else the system allocator) instead of Arrow's default mimalloc: with a
    million rows mimalloc spends over a second in the kernel returning and re-faulting pages
    (measured: a re-run of 1M rows took 3.3-4.0 s with it, 3.0-3.2 s with jemalloc).
    ``ARROW_DEFAULT_MEMORY_POOL`` set by the user still wins."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow build without jemalloc (macOS, Windows)
        pa.set_memory_pool(pa.system_memory_pool())
