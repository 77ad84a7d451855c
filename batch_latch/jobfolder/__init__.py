"""The job folder: the checkpoint (every outcome, durable), lookups over earlier runs, the
run history and lock, and atomic files."""
