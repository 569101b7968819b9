"""``eventually``: waiting for what the system does after it has answered (a
projection, the checkout saga, a worker, a cache follower, a process starting)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar, overload

T = TypeVar("T")

TIMEOUT = 30.0
INTERVAL = 0.05


@overload
def eventually(
    check: Callable[[], Awaitable[T | None]],
    what: str = ...,
    *,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> Coroutine[Any, Any, T]: ...


@overload
def eventually(
    check: Callable[[], T | None],
    what: str = ...,
    *,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


def eventually(
    check: Callable[[], object],
    what: str = "the check to pass",
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    retry_on: tuple[type[Exception], ...] = (AssertionError,),
) -> object:
    """Call ``check`` every ``interval`` seconds until it returns something truthy,
    and return that. A falsy value, or one of ``retry_on`` raised (a failed
    ``assert``, by default), means "not yet"; any other exception ends the wait.

    After ``timeout`` seconds: an ``AssertionError`` naming ``what`` and the last
    thing ``check`` gave (raised from the last exception, if it raised one).

    An ``async def`` check makes the call awaitable (``await eventually(...)``),
    polling without blocking the event loop."""
    wait = _Wait(what, timeout, retry_on)
    if inspect.iscoroutinefunction(check):
        return wait.polled_async(check, interval)
    return wait.polled(check, interval)


class _Wait:
    """One wait: its deadline, and what the check gave last."""

    def __init__(self, what: str, timeout: float, retry_on: tuple[type[Exception], ...]) -> None:
        self.what, self.timeout, self.retry_on = what, timeout, retry_on
        self.deadline = time.monotonic() + timeout
        self.last: object = None

    def polled(self, check: Callable[[], object], interval: float) -> object:
        while (found := self.attempt(check)) is None:
            time.sleep(interval)
        return found

    async def polled_async(self, check: Callable[[], Awaitable[object]], interval: float) -> object:
        while (found := self.attempt(await self.settled(check))) is None:
            await asyncio.sleep(interval)
        return found

    def attempt(self, check: Callable[[], object]) -> object:
        """What ``check`` found, or None for "not yet" (an AssertionError once late)."""
        try:
            if found := check():
                return found
            self.last = found
        except self.retry_on as error:
            self.last = error
        if time.monotonic() > self.deadline:
            message = f"not within {self.timeout} s: {self.what} (last: {self.last!r})"
            if isinstance(self.last, BaseException):
                raise AssertionError(message) from self.last
            raise AssertionError(message)
        return None

    async def settled(self, check: Callable[[], Awaitable[object]]) -> Callable[[], object]:
        """The awaited check's outcome, for ``attempt`` to judge: its value, or the
        ``retry_on`` error it raised (raised again when called)."""
        try:
            value = await check()
        except self.retry_on as error:
            return partial(_reraise, error)
        return lambda: value


def _reraise(error: Exception) -> object:
    raise error
