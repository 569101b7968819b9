"""Redis commands of concurrent requests sent together, one round trip for all.

Under load, many requests reach the same Redis call (the route limit's script, the
product cache's ``MGET``) in one turn of the event loop. Sent one by one, each pays
redis-py's whole path (a connection from the pool, packing, a ``send`` system call
whose loopback delivery runs in our process, a read, the release): on a cached
product page the two round trips took about 40% of the request's CPU
(bench/README.md, "Where a request's CPU goes"). ``CommandBatcher`` queues each
command and, on the loop's next turn, sends whatever is queued as one pipeline
(not a transaction: each command is as atomic as it was alone, and none depends on
another's answer). A lone command is sent as it is, without a pipeline.

Each caller still bounds its own wait (``asyncio.timeout``); the batch as a whole is
bounded by ``TIMEOUT`` too, so that a stalled Redis cannot keep a connection waiting
for ever, and its failure is every queued caller's failure."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aioredis

from infra.redis.reads import TIMEOUT

Command = tuple[Any, ...]


class CommandBatcher:
    """One per asyncio client, used on one event loop."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queued: list[tuple[Command, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *command: Any) -> Any:
        """``command``'s answer, as ``client.execute_command(*command)`` gives it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._queued.append((command, answer))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        self._scheduled = False
        queued, self._queued = self._queued, []
        waiting = [(command, answer) for command, answer in queued if not answer.done()]
        if waiting:
            task = asyncio.ensure_future(self._send(waiting))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                if len(batch) == 1:
                    lone = self._client.execute_command(*batch[0][0])  # type: ignore[no-untyped-call]
                    answers: list[Any] = [await lone]
                else:
                    pipe = self._client.pipeline(transaction=False)
                    for command, _ in batch:
                        pipe.execute_command(*command)
                    answers = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:  # the loop is closing
            self._fail(batch, redis.ConnectionError("the batch was cancelled"))
            raise
        except Exception as error:  # noqa: BLE001 - each caller gets it
            self._fail(batch, error)
            return
        for (_, answer), result in zip(batch, answers, strict=True):
            if answer.done():
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)

    @staticmethod
    def _fail(batch: list[tuple[Command, asyncio.Future[Any]]], error: Exception) -> None:
        for _, answer in batch:
            if not answer.done():
                answer.set_exception(error)
