"""Whole search answers cached in Redis: near-real-time search, as OpenSearch's own
shard request cache is (it drops cached answers at each index refresh, every second).

At a million products a one-word search matches up to ~90,000 of them, and ranking
and counting facets over every match is what makes a search slow on Postgres
(bench/README.md, "Second pass" of the million-product catalog); the same words are
searched again and again. So the read API answers a search from Redis when an
answer for the same request was computed from the catalog as it is now, give or
take ``refresh`` seconds.

Keys, under the product cache's prefix ``P``:

- ``P:search:state``: ``G:epoch:version``, written by the product cache's follower
  (``infra.redis.product_cache.RedisCacheInvalidator``) each time it is caught up with
  ``catalog_products``' change feed, and expiring a few seconds after: a dead or
  lagging follower turns this cache off, as it does the product cache. *version* is
  a feed position the follower had read, with the catalog log position of the
  category view (facets show category names): it moves to the follower's positions
  at most every ``refresh`` seconds, and only when something changed;
- ``P:search:<state>:<digest>``: the answer's JSON.

Why no guard is needed on writes: a reader reads the state *before* it queries
Postgres, and the follower had read the feed up to *version* before it wrote the
state, so an answer computed after reading state S reflects every change up to S's
version: it is fit to be served under S. A later version is a new key space, and
the old one expires (``ttl``). A search with a consistency token skips the cache
(read-your-writes needs the view itself); the staleness of the others is at most
``refresh`` plus the follower's lag.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import cast

import redis
import redis.asyncio as aioredis

from infra.redis.reads import TIMEOUT, Breaker, reader_client


def state_key(prefix: str) -> str:
    return f"{prefix}search:state"


def search_state(generation: int, epoch: str, version: str) -> str:
    return f"{generation}:{epoch}:{version}"


class RedisSearchCache:
    """The read API's side (one per process, used on its event loop)."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: float) -> None:
        self._client = client
        self._prefix = prefix
        self._state_key = state_key(prefix)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._state: bytes | None = None
        self._in_flight: dict[str, asyncio.Task[bytes]] = {}
        self.breaker = Breaker("search cache")

    async def fetch(self, request: bytes, answer: Callable[[], Awaitable[bytes]]) -> bytes:
        digest = hashlib.sha256(request).hexdigest()[:40]
        body, slot = await self._lookup(digest)
        if body is not None:
            return body
        if slot is None:  # nothing vouched for: no sharing either, the view is moving
            return await answer()
        task = self._in_flight.get(slot)
        if task is None:
            # A task of its own, so that a client hanging up cancels only its wait,
            # not the answer the others wait for, nor its storing.
            task = asyncio.create_task(self._answer_and_store(slot, answer))
            self._in_flight[slot] = task
            task.add_done_callback(lambda done: self._forget(slot, done))
        return await asyncio.shield(task)

    async def close(self) -> None:
        await self._client.aclose()

    async def _lookup(self, digest: str) -> tuple[bytes | None, str | None]:
        """The cached answer, or where to store one (None: no usable cache)."""
        if self.breaker.is_open():
            return None, None
        try:
            async with asyncio.timeout(TIMEOUT):
                if self._state is None:
                    self._state = cast("bytes | None", await self._client.get(self._state_key))
                if self._state is None:
                    self.breaker.counts["miss"] += 1
                    return None, None
                # One round trip: the entry, and whether the follower still vouches.
                state, entry = cast(
                    "list[bytes | None]",
                    await self._client.mget(self._state_key, self._entry(self._state, digest)),
                )
        except (redis.RedisError, TimeoutError) as error:
            self._failed(error)
            return None, None
        if state != self._state:  # a new version, or the follower stopped vouching
            self._state, entry = state, None
        self.breaker.counts["hit" if entry is not None else "miss"] += 1
        return entry, None if state is None else self._entry(state, digest)

    async def _answer_and_store(self, slot: str, answer: Callable[[], Awaitable[bytes]]) -> bytes:
        body = await answer()
        try:
            async with asyncio.timeout(TIMEOUT):
                await self._client.set(slot, body, px=self._ttl_ms)
        except (redis.RedisError, TimeoutError) as error:
            self._failed(error)
        return body

    def _forget(self, slot: str, done: asyncio.Task[bytes]) -> None:
        self._in_flight.pop(slot, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have hung up

    def _entry(self, state: bytes, digest: str) -> str:
        return f"{self._prefix}search:{state.decode()}:{digest}"

    def _failed(self, error: redis.RedisError | TimeoutError) -> None:
        self.breaker.failed(error)
        self._state = None


def connect(url: str, prefix: str, ttl_seconds: float) -> RedisSearchCache:
    return RedisSearchCache(reader_client(url), prefix, ttl_seconds)
