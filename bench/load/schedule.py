"""The open model's clock: sessions arrive at a fixed rate whatever the server does,
and every request is timed from the moment it was meant to leave.

All times are ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process of
the machine, so the workers' samples line up), not ``loop.time()`` (uvloop's is the
loop iteration's cached millisecond)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any


def arrivals(rate: float, duration: float, rng: random.Random, poisson: bool = True) -> list[float]:
    """Offsets (seconds from the start) of the sessions arriving in ``duration``:
    a Poisson process of ``rate`` per second, or one every ``1 / rate`` seconds."""
    if rate <= 0:
        return []
    if not poisson:
        return [i / rate for i in range(int(duration * rate))]
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < duration:
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def sleep_until(due: float) -> None:
    delay = due - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def open_model(
    offsets: list[float],
    start: float,
    session: Callable[[int, float], Coroutine[Any, Any, None]],
) -> list[float]:
    """Start ``session(i, due)`` at ``start + offsets[i]``, whatever the earlier
    sessions are doing; waits for every session to end. Returns how late (ms) the
    generator started each one (its own delay, never the server's)."""
    late: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    for i, offset in enumerate(offsets):
        due = start + offset
        await sleep_until(due)
        late.append((time.monotonic() - due) * 1000)
        task = asyncio.create_task(session(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
    return late


class LagProbe:
    """A task sleeping ``period`` seconds that records how late it wakes: the
    generator's own event-loop lag. A run whose p99 lag exceeds its bound is
    flagged invalid: its latencies may be the generator's, not the server's."""

    def __init__(self, period: float = 0.010) -> None:
        self.period = period
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag-probe")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.lags_ms.append(max(0.0, (time.monotonic() - before - self.period) * 1000))
