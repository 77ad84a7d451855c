"""Sending: which rows go out (runner), the worker pool, the attempt loop with its throttle
and retry policy, the per-row decision table, stops, estimates, notices and progress."""
