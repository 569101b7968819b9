"""Redis commands of concurrent requests sent together (``infra.redis.batching``):
one pipeline per loop turn, each caller its own answer or error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from infra.redis.batching import CommandBatcher


class FakePipeline:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *command: Any) -> None:
        self.commands.append(command)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert raise_on_error is False
        self.client.round_trips.append(list(self.commands))
        if self.client.down:
            raise redis.ConnectionError("down")
        return [self.client.answer(c) for c in self.commands]


class FakeClient:
    def __init__(self) -> None:
        self.round_trips: list[list[tuple[Any, ...]]] = []
        self.down = False

    def answer(self, command: tuple[Any, ...]) -> Any:
        if command[0] == "FAIL":
            return redis.ResponseError("refused")
        return ("answer", *command)

    async def execute_command(self, *command: Any) -> Any:
        self.round_trips.append([command])
        if self.down:
            raise redis.ConnectionError("down")
        result = self.answer(command)
        if isinstance(result, Exception):
            raise result
        return result

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False
        return FakePipeline(self)


def test_concurrent_commands_share_one_round_trip_each_gets_its_answer() -> None:
    client = FakeClient()

    async def main() -> list[Any]:
        batcher = CommandBatcher(client)  # type: ignore[arg-type]
        return await asyncio.gather(*(batcher.execute("GET", n) for n in range(5)))

    answers = asyncio.run(main())
    assert answers == [("answer", "GET", n) for n in range(5)]
    assert client.round_trips == [[("GET", n) for n in range(5)]]


def test_a_lone_command_is_sent_alone_and_later_ones_in_their_own_turn() -> None:
    client = FakeClient()

    async def main() -> None:
        batcher = CommandBatcher(client)  # type: ignore[arg-type]
        assert await batcher.execute("GET", 1) == ("answer", "GET", 1)
        assert await batcher.execute("GET", 2) == ("answer", "GET", 2)

    asyncio.run(main())
    assert client.round_trips == [[("GET", 1)], [("GET", 2)]]


def test_an_error_answer_is_its_own_command_s_and_a_failure_everyones() -> None:
    client = FakeClient()

    async def main() -> None:
        batcher = CommandBatcher(client)  # type: ignore[arg-type]
        results: tuple[Any, ...] = await asyncio.gather(
            batcher.execute("GET", 1), batcher.execute("FAIL"), return_exceptions=True
        )
        ok, refused = results
        assert ok == ("answer", "GET", 1)
        assert isinstance(refused, redis.ResponseError)
        client.down = True
        failed = await asyncio.gather(
            batcher.execute("GET", 1), batcher.execute("GET", 2), return_exceptions=True
        )
        assert all(isinstance(error, redis.ConnectionError) for error in failed)
        with pytest.raises(redis.ConnectionError):
            await batcher.execute("GET", 3)

    asyncio.run(main())


def test_a_caller_that_gave_up_leaves_the_others_their_answers() -> None:
    client = FakeClient()

    async def main() -> None:
        batcher = CommandBatcher(client)  # type: ignore[arg-type]
        gone = asyncio.ensure_future(batcher.execute("GET", 1))
        kept = asyncio.ensure_future(batcher.execute("GET", 2))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == ("answer", "GET", 2)

    asyncio.run(main())
