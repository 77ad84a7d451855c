"""The throttle: pace, shared pauses, budget and stop.

The decisions are driven through ``Throttle._decide(now)`` with a fake clock; the threaded
parts wait on events with timeouts, never on a sleep that hopes the other thread got there.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_latch.send.throttle import Throttle
from batch_latch.vocab import StopReason

WAIT = 5.0  # seconds a test waits for another thread before it calls the test failed


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def greedy_starts(throttle: Throttle, clock: FakeClock, n: int) -> list[float]:
    """Ask again exactly when told to, until ``n`` requests have started."""
    starts: list[float] = []
    for _ in range(n * 10):
        wait = throttle._decide(clock.t)
        assert wait is not None
        if wait == 0.0:
            starts.append(clock.t)
            if len(starts) == n:
                return starts
        else:
            assert wait > 0
            clock.t += wait
    raise AssertionError("the throttle never let the requests start")


def assert_window_bound(starts: list[float], rate: float, burst: float = 2.0) -> None:
    """No window of length t holds more than ``rate * t + burst`` starts."""
    for i in range(len(starts)):
        for j in range(i, len(starts)):
            span = starts[j] - starts[i]
            assert j - i + 1 <= rate * span + burst + 1e-6, (i, j, span)


# --- pace ------------------------------------------------------------------------------------


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Throttle(0)
    with pytest.raises(ValueError):
        Throttle(-1)


def test_first_request_starts_at_once() -> None:
    clock = FakeClock()
    throttle = Throttle(0.01, clock=clock)
    assert throttle._decide(clock.t) == 0.0
    assert throttle.granted == 1


def test_second_request_waits_one_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(4.0, clock=clock)
    assert throttle._decide(clock.t) == 0.0
    assert throttle._decide(clock.t) == pytest.approx(0.25)
    assert throttle._decide(clock.t + 0.1) == pytest.approx(0.15)
    assert throttle._decide(clock.t + 0.25) == 0.0


@pytest.mark.parametrize("rate", [0.5, 3.0, 10.0, 1000.0])
def test_steady_pace_at_rate(rate: float) -> None:
    clock = FakeClock()
    throttle = Throttle(rate, clock=clock)
    starts = greedy_starts(throttle, clock, 200)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.0 / rate] * len(gaps))
    assert throttle.granted == 200


def test_idle_time_saves_up_at_most_a_burst_of_two() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock)
    assert throttle._decide(clock.t) == 0.0
    clock.t += 3600  # an hour idle
    assert throttle._decide(clock.t) == 0.0
    assert throttle._decide(clock.t) == 0.0
    assert throttle._decide(clock.t) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(min_value=0.05, max_value=500.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=120),
    pauses=st.lists(
        st.tuples(st.integers(0, 119), st.floats(min_value=0.0, max_value=10.0)), max_size=5
    ),
)
def test_never_more_than_rate_t_plus_two_in_any_window(
    rate: float, gaps: list[float], pauses: list[tuple[int, float]]
) -> None:
    clock = FakeClock(0.0)
    throttle = Throttle(rate, clock=clock)
    pause_at = dict(pauses)
    starts: list[float] = []
    for k, gap in enumerate(gaps):
        clock.t += gap
        if k in pause_at:
            throttle.pause_until(clock.t + pause_at[k])
        # Several workers asking at the same instant, and one that comes back when told.
        for _ in range(3):
            wait = throttle._decide(clock.t)
            assert wait is not None
            if wait == 0.0:
                starts.append(clock.t)
            else:
                assert wait > 0
        wait = throttle._decide(clock.t)
        assert wait is not None
        if wait == 0.0:
            starts.append(clock.t)
        else:
            clock.t += wait
            if throttle._decide(clock.t) == 0.0:
                starts.append(clock.t)
    assert throttle.granted == len(starts)
    assert_window_bound(starts, rate)


# --- pauses ----------------------------------------------------------------------------------


def test_pause_blocks_everyone_until_the_deadline() -> None:
    clock = FakeClock()
    throttle = Throttle(1000.0, clock=clock)
    assert throttle._decide(clock.t) == 0.0
    throttle.pause_until(clock.t + 5)
    for worker_time in (clock.t, clock.t + 1, clock.t + 4.999):
        wait = throttle._decide(worker_time)
        assert wait == pytest.approx(clock.t + 5 - worker_time)
    assert throttle.granted == 1
    assert throttle._decide(clock.t + 5) == 0.0


def test_a_later_pause_wins_and_an_earlier_one_does_not_shorten_it() -> None:
    clock = FakeClock()
    throttle = Throttle(1000.0, clock=clock)
    throttle.pause_until(clock.t + 5)
    throttle.pause_until(clock.t + 8)
    assert throttle.paused_until == clock.t + 8
    throttle.pause_until(clock.t + 2)
    throttle.pause_for(1)
    assert throttle.paused_until == clock.t + 8
    assert throttle._decide(clock.t + 6) == pytest.approx(2.0)
    assert throttle._decide(clock.t + 8) == 0.0


def test_pause_for_counts_from_the_clock() -> None:
    clock = FakeClock()
    throttle = Throttle(1000.0, clock=clock)
    throttle.pause_for(2.5)
    assert throttle.paused_until == clock.t + 2.5
    throttle.pause_for(-10)  # never a pause in the past that could shorten anything
    assert throttle.paused_until == clock.t + 2.5


def test_after_a_pause_at_most_a_burst_of_two_then_the_steady_pace() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock)
    assert throttle._decide(clock.t) == 0.0
    deadline = clock.t + 30
    throttle.pause_until(deadline)
    clock.t = deadline
    starts = greedy_starts(throttle, clock, 4)
    assert starts == pytest.approx([deadline, deadline, deadline + 1, deadline + 2])


def test_a_burst_just_before_a_short_pause_does_not_add_to_the_start_after_it() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock)
    clock.t += 10  # two tokens saved up
    assert throttle._decide(clock.t) == 0.0
    assert throttle._decide(clock.t) == 0.0
    throttle.pause_until(clock.t + 0.1)
    starts = [clock.t, clock.t, *greedy_starts(throttle, clock, 1)]
    assert_window_bound(starts, 1.0)


# --- budget ----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [0, 1, 5])
def test_max_requests_grants_exactly_n_then_stops(budget: int) -> None:
    clock = FakeClock()
    throttle = Throttle(1000.0, max_requests=budget, clock=clock)
    granted = 0
    for _ in range(budget * 3 + 3):
        wait = throttle._decide(clock.t)
        if wait is None:
            break
        if wait == 0.0:
            granted += 1
        clock.t += 1.0
    assert granted == budget
    assert throttle.granted == budget
    assert throttle._decide(clock.t) is None
    assert throttle.stop_reason == "max_requests"


def test_max_requests_through_acquire() -> None:
    throttle = Throttle(1e6, max_requests=3)
    assert [throttle.acquire() for _ in range(5)] == [True, True, True, False, False]
    assert throttle.stop_reason == "max_requests"
    assert throttle.granted == 3


def test_an_earlier_stop_reason_is_kept_when_the_budget_runs_out() -> None:
    throttle = Throttle(1e6, max_requests=1)
    assert throttle.acquire()
    throttle.stop(StopReason.KEY_REJECTED)
    assert not throttle.acquire()
    assert throttle.stop_reason == "key_rejected"


# --- stop, with real threads -----------------------------------------------------------------


def test_stop_makes_acquire_return_false_and_the_first_reason_wins() -> None:
    clock = FakeClock()
    throttle = Throttle(1000.0, clock=clock)
    assert throttle.stop_reason is None
    throttle.stop(StopReason.DAILY_QUOTA)
    throttle.stop(StopReason.INTERRUPTED)
    assert throttle.stop_reason == "daily_quota"
    assert throttle._decide(clock.t) is None
    assert throttle.acquire() is False
    assert throttle.granted == 0


class SignallingClock:
    """Real monotonic time; sets ``asked`` once a blocked call has read the clock ``after`` times.

    Throttle reads the clock under its lock just before it waits, and ``stop`` needs that lock:
    so once ``asked`` is set, ``stop`` runs only when the other thread is waiting (or done).
    """

    def __init__(self, after: int) -> None:
        import time

        self._now: Callable[[], float] = time.monotonic
        self._calls = 0
        self._after = after
        self.asked = threading.Event()

    def __call__(self) -> float:
        self._calls += 1
        if self._calls >= self._after:
            self.asked.set()
        return self._now()


def run_in_thread(
    target: Callable[[], bool],
) -> tuple[threading.Thread, list[bool], threading.Event]:
    result: list[bool] = []
    done = threading.Event()

    def body() -> None:
        result.append(target())
        done.set()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, result, done


def test_stop_wakes_a_thread_blocked_in_acquire() -> None:
    clock = SignallingClock(after=3)  # 1: __init__, 2: first acquire, 3: the blocked one
    throttle = Throttle(0.001, clock=clock)  # the next token is 1000 s away
    assert throttle.acquire()
    thread, result, done = run_in_thread(throttle.acquire)
    assert clock.asked.wait(WAIT)
    assert not done.is_set()
    throttle.stop(StopReason.INTERRUPTED)
    assert done.wait(WAIT), "acquire did not wake up on stop"
    thread.join(WAIT)
    assert result == [False]


def test_stop_wakes_a_thread_blocked_by_a_pause() -> None:
    clock = SignallingClock(after=2)  # 1: __init__, 2: the blocked acquire
    throttle = Throttle(1000.0, clock=clock)
    throttle.pause_for(10_000.0)  # only stop can end this wait within the test
    thread, result, done = run_in_thread(throttle.acquire)
    assert clock.asked.wait(WAIT)
    throttle.stop(StopReason.API_DOWN)
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert result == [False]


def test_stop_wakes_a_thread_in_sleep() -> None:
    clock = SignallingClock(after=3)  # 1: __init__, 2: sleep's deadline, 3: in its loop
    throttle = Throttle(10.0, clock=clock)
    thread, result, done = run_in_thread(lambda: throttle.sleep(1000.0))
    assert clock.asked.wait(WAIT)
    assert not done.is_set()
    throttle.stop(StopReason.KEY_REJECTED)
    assert done.wait(WAIT), "sleep did not wake up on stop"
    thread.join(WAIT)
    assert result == [False]


def test_sleep_returns_true_when_not_stopped() -> None:
    clock = FakeClock()
    throttle = Throttle(10.0, clock=clock)
    assert throttle.sleep(0) is True
    assert throttle.sleep(-1) is True

    class Jumping(FakeClock):
        def __call__(self) -> float:
            self.t += 20.0  # every look at the clock finds twenty seconds gone
            return self.t

    jumping = Throttle(10.0, clock=Jumping())
    assert jumping.sleep(15.0) is True  # would block for 15 real seconds if it ignored the clock


def test_sleep_after_stop_returns_false_at_once() -> None:
    throttle = Throttle(10.0)
    throttle.stop(StopReason.INTERRUPTED)
    assert throttle.sleep(1000.0) is False


def test_acquire_from_many_threads_grants_each_request_once() -> None:
    throttle = Throttle(1e6, max_requests=50)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            ok = throttle.acquire()
            with lock:
                results.append(ok)
            if not ok:
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()
    assert results.count(True) == 50
    assert results.count(False) == 8
    assert throttle.granted == 50
