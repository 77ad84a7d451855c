"""Progress and stderr notices: a bar on a terminal, plain lines otherwise; visible pauses."""

from __future__ import annotations

import contextlib
import io
import threading

from batch_latch.send.estimate import Pace, duration, duration_short
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Bar, Silent
from tests.doubles import wait_for


def test_silent_writes_lines_and_nothing_else() -> None:
    stream = io.StringIO()
    silent = Silent(stream)
    silent.start(10)
    silent.row_done("success")
    silent.paused("paused until 12:00")
    silent.write("a line")
    silent.close()
    assert stream.getvalue() == "a line\n"


def test_the_bar_counts_rows_and_shows_pauses() -> None:
    stream = io.StringIO()
    bar = Bar(stream)
    bar.write("before the bar")
    bar.start(3)
    bar.row_done("success")
    bar.row_done("failed")
    bar.paused("paused until 12:00:00: the API answered 429")
    bar.write("a notice")
    bar.row_done("not_found")
    bar.close()
    bar.close()  # twice is fine
    text = stream.getvalue()
    assert text.startswith("before the bar\n")
    assert "a notice" in text
    assert "3/3" in text
    assert "ok=1" in text and "failed=1" in text and "not_found=1" in text
    assert "paused until 12:00:00" in text


def test_a_long_pause_gets_one_line_with_its_cause() -> None:
    stream = io.StringIO()
    notices = Notices(Silent(stream))
    notices.pause(30.0, "the API answered 429 (too many requests)")
    notices.pause(30.0, "the API answered 429 (too many requests)")  # the same pause
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Pausing 30 s until ")
    assert lines[0].endswith("the API answered 429 (too many requests).")


def test_a_short_pause_is_not_a_line() -> None:
    stream = io.StringIO()
    Notices(Silent(stream)).pause(4.9, "short")
    assert stream.getvalue() == ""


def test_once_says_a_thing_once() -> None:
    stream = io.StringIO()
    notices = Notices(Silent(stream))
    notices.once("k", "hello")
    notices.once("k", "hello")
    assert stream.getvalue() == "hello\n"


def test_estimate_at_the_accounts_limits_is_said_once_they_are_known() -> None:
    stream = io.StringIO()
    notices = Notices(Silent(stream))
    notices.estimate(12_000, Pace(10.0, 50, 5000))
    text = stream.getvalue()
    assert "50 a minute" in text and "5,000 a day" in text and "days" in text


def test_estimate_at_limits_above_rate_says_the_rate_is_the_bound() -> None:
    """The contract: "once the first answer shows the account's limits, how long at those
    limits" -- said also when --rate, not the limits, is the bound."""
    stream = io.StringIO()
    notices = Notices(Silent(stream))
    notices.estimate(1000, Pace(10.0, 1000, 180_000))
    assert stream.getvalue() == (
        "This account's limits are 1,000 a minute, 180,000 a day: the 1,000 requests left "
        "take about 2 min at --rate 10, which stays below them.\n"
    )


def test_durations_read_like_a_person_would_say_them() -> None:
    assert duration(30) == "under a minute"
    assert duration(600) == "about 10 min"
    assert duration(2 * 3600 + 5 * 60) == "about 2 h 05 min"
    assert duration(3 * 86400) == "about 3.0 days"
    assert duration_short(30) == "30 s"
    assert duration_short(600) == "10 min"
    assert duration_short(7200) == "2.0 h"


# --- stderr lines stay whole -----------------------------------------------------------------


class _Meeting(io.StringIO):
    """A stream where each thread's first piece of text waits (at most 1 s) for another
    thread's, as a busy machine may schedule them: writers that do not hold a lock across
    a whole line interleave their pieces for certain."""

    def __init__(self) -> None:
        super().__init__()
        self._barrier = threading.Barrier(2, timeout=1.0)

    def write(self, text: str) -> int:
        written = super().write(text)
        if text.strip():
            with contextlib.suppress(threading.BrokenBarrierError):
                self._barrier.wait()
        return written


def test_notices_from_workers_stay_whole() -> None:
    stream = _Meeting()
    notices = Notices(Silent(stream))
    lines = ["This account's limits are 30 a minute.", "Pausing 6 s until 10:44:56: a 429."]
    threads = [threading.Thread(target=notices.say, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(stream.getvalue().splitlines()) == sorted(lines), stream.getvalue()


# --- the bar during a pause (issue #18 item 9) -----------------------------------------------


class _Frames(io.StringIO):
    """A terminal's stream: what the bar drew last, frame by frame (tqdm starts each with \\r)."""

    def last(self) -> str:
        return self.getvalue().replace("\n", "\r").split("\r")[-1]


def test_during_a_pause_the_bar_keeps_its_counts_and_time_left_and_counts_down() -> None:
    stream = _Frames()
    bar = Bar(stream)
    bar.start(10)
    for _ in range(3):
        bar.row_done("success")
    bar.row_done("failed")
    long_cause = "until 12:00:00: this minute's API limit is used up " + "x" * 200
    bar.paused(long_cause, 5.0)
    try:
        first = stream.last()
        assert "4/10" in first and "ok=3" in first and "failed=1" in first, first
        assert "<" in first  # tqdm's time left, still shown
        assert "paused, 5 s left" in first or "paused, 4 s left" in first, first
        assert "x" * 100 not in first  # the cause is cut short, not the counts
        wait_for(lambda: "paused, 3 s left" in stream.last(), deadline=10, what="countdown")
        assert "ok=3" in stream.last()
    finally:
        bar.close()


def test_the_time_left_is_the_runs_average_so_a_pause_does_not_make_it_swing() -> None:
    bar = Bar(io.StringIO())
    bar.start(10)
    try:
        assert bar._bar.smoothing == 0
    finally:
        bar.close()


def test_notices_hand_the_bar_the_pause_and_its_length() -> None:
    seen: list[tuple[str, float]] = []

    class Recorder(Silent):
        def paused(self, text: str, seconds: float = 0.0) -> None:
            seen.append((text, seconds))

    Notices(Recorder(io.StringIO())).pause(30.0, "the API answered 429")
    ((text, seconds),) = seen
    assert seconds == 30.0 and text.startswith("until ") and "429" in text
