"""Allows ``python -m batch_latch``."""

from batch_latch.cli import main

raise SystemExit(main())
