"""The line that says why a live command stopped early, and what to do next."""

from __future__ import annotations

from batch_latch.send.attempt_loop import StopNote
from batch_latch.send.notices import both_times
from batch_latch.vocab import SIGNAL_NAMES, StopReason, plural

AGAIN = "Run the same command again to continue."
_again = "run the same command again to continue"


def stop_message(
    reason: StopReason | None, note: StopNote, pending: int, max_requests: int | None
) -> str:
    if reason is None:
        return ""
    detail = note.detail
    left = f"{plural(pending, 'row')} {'is' if pending == 1 else 'are'} pending"
    if reason is StopReason.KEY_REJECTED:
        return (
            f"Stopped: Fusebill rejected the API key ({detail}); nothing more was sent and "
            f"{left}. Check FUSEBILL_API_KEY, then {_again}."
        )
    if reason is StopReason.DAILY_QUOTA:
        when = both_times(note.resume_at) if note.resume_at else "an unknown time"
        spent = f"spent for this tool ({detail})" if note.at_reserve else "spent"
        return (
            f"Stopped: the daily API quota is {spent}; it resets at {when}. {left}. "
            f"After that, {_again} (or use --wait-for-quota to wait for it)."
        )
    if reason is StopReason.LONG_PAUSE:
        when = both_times(note.resume_at) if note.resume_at else "later"
        return f"Stopped: {detail}; {left}. Run the same command again after {when}."
    if reason is StopReason.SYSTEMATIC_REFUSAL:
        return (
            f"Stopped: {detail}. Check the sheet, and the account behind FUSEBILL_API_KEY and "
            f"FUSEBILL_BASE_URL; {left}. --keep-going turns this stop off."
        )
    if reason is StopReason.API_DOWN and note.unreachable:
        return (
            f"Stopped: could not connect to {note.unreachable} ({detail}); no answer came "
            f"from it, so check FUSEBILL_BASE_URL (host and port). {left}: fix it, then {_again}."
        )
    if reason is StopReason.API_DOWN:
        return f"Stopped: the API looks down ({detail}). {left}. Later, {_again}."
    if reason is StopReason.RATE_LIMITED:
        return f"Stopped: {detail}. {left}. Later, perhaps with a lower --rate, {_again}."
    if reason is StopReason.MAX_REQUESTS:
        cap = plural(max_requests or 0, "request")
        return f"Stopped after --max-requests {cap}; {left}. {AGAIN}"
    if reason is StopReason.INTERRUPTED:
        return f"Interrupted: {left}; reports are written. {AGAIN}"
    if reason in (StopReason.TERMINATED, StopReason.HANGUP):
        return f"Stopped by {SIGNAL_NAMES[reason]}: {left}; reports are written. {AGAIN}"
    if reason is StopReason.LEDGER_ERROR:
        return f"Stopped: the job's job.db could not be written; {left}."
    # Configuration problems: the answer's own words say what to fix.
    return f"Stopped: {detail}. Nothing more was sent; {left}. Fix that, then {_again}."
