"""The job folder: its ledger (job.db: every command and outcome, durable), the re-run
rules over it, a v3 folder taken in, the run history and lock, and atomic files."""
