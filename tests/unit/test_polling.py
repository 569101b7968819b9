"""The one ``eventually`` every suite polls with."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.polling import eventually


def test_it_returns_the_first_truthy_result() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 3 and "ready", interval=0) == "ready"


def test_a_failed_assert_is_retried_until_it_passes() -> None:
    calls = itertools.count()

    def check() -> int:
        n = next(calls)
        assert n >= 2, "not yet"
        return n

    assert eventually(check, interval=0) == 2


def test_at_the_deadline_it_names_what_and_the_last_error() -> None:
    def check() -> None:
        raise AssertionError("still 3 rows")

    with pytest.raises(AssertionError, match=r"the rows.*still 3 rows") as raised:
        eventually(check, "the rows", timeout=0.05, interval=0.01)
    assert isinstance(raised.value.__cause__, AssertionError)


def test_an_unexpected_error_ends_the_wait_at_once() -> None:
    calls = itertools.count()

    def check() -> None:
        next(calls)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        eventually(check, timeout=5, interval=0)
    assert next(calls) == 1


def test_an_async_check_is_awaited_without_blocking_the_loop() -> None:
    state = {"done": False}

    async def flip() -> None:
        await asyncio.sleep(0.02)
        state["done"] = True

    async def check() -> bool:
        return state["done"]

    async def main() -> bool:
        flipper = asyncio.create_task(flip())
        result = await eventually(check, interval=0.005, timeout=2)
        await flipper
        return result

    assert asyncio.run(main()) is True
