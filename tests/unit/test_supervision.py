"""The one supervised loop: a failing step is kept for /health and retried with a
growing backoff, a step that works again clears it, and the loop is on the
process's list exactly while it runs."""

from __future__ import annotations

import threading

from streams.supervision import Loops, Supervised, backoff
from tests.support.polling import eventually


def test_backoff_doubles_from_the_first_pause_up_to_the_ceiling() -> None:
    assert [backoff(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff(0, 0.5, 3.0) == 0.5


def test_a_failing_step_is_reported_retried_and_cleared_once_it_works() -> None:
    loops = Loops()
    calls: list[int] = []
    may_work = threading.Event()

    def step() -> bool:
        calls.append(1)
        if not may_work.is_set():
            raise ConnectionError("database away")
        return True

    loop = Supervised("follower", step, interval=60.0, loops=loops)
    loop.start()
    try:
        eventually(lambda: len(calls) >= 2, "the failing step is retried")
        (state,) = loops.states()
        assert state.running
        assert state.last_error == "ConnectionError: database away"
        assert state.since is not None
        assert loops.errors() == {"follower": "ConnectionError: database away"}

        may_work.set()
        eventually(lambda: loops.errors() == {}, "a step that works clears the failure")
        assert loop.failures == 0
        assert loops.states()[0].since is None
    finally:
        loop.stop()
    assert not loop.alive
    assert loops.states() == []


def test_an_idle_step_waits_for_its_interval_or_a_wake() -> None:
    loops = Loops()
    calls: list[int] = []

    def step() -> bool:
        calls.append(1)
        return True

    loop = Supervised("indexer", step, interval=60.0, loops=loops)
    loop.start()
    try:
        eventually(lambda: len(calls) == 1, "the first step runs at once")
        loop.wake()
        eventually(lambda: len(calls) == 2, "a wake runs the step again before the interval")
    finally:
        loop.stop()
