"""Sliding-window rate limiters behind the ``RateLimiter`` and ``AsyncRateLimiter``
ports: Redis (shared by every process) and in-process (the embedded default, one
process only)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator

import redis
import redis.asyncio as aioredis

from commands.ports import RateCount
from infra.redis.batching import CommandBatcher
from infra.redis.reads import TIMEOUT

log = logging.getLogger(__name__)

# Trim the window, count, and admit or refuse atomically inside Redis. Answers
# {admitted, remaining, seconds until the oldest attempt leaves} (a float as text:
# Redis would truncate a Lua number).
_SLIDING_WINDOW = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local admitted = 0
if count < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    count = count + 1
    admitted = 1
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {admitted, limit - count, tostring(window - (now - tonumber(oldest[2])))}
"""


def _count(result: list[object]) -> RateCount:
    admitted, remaining, reset = result
    assert isinstance(remaining, int)
    assert isinstance(reset, bytes)
    return RateCount(admitted == 1, remaining, float(reset))


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "ratelimit:") -> None:
        self._prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW)

    def take(self, key: str, limit: int, window_seconds: float) -> RateCount:
        args: list[float | str] = [time.time(), window_seconds, limit, uuid.uuid4().hex]
        return _count(self._script(keys=[self._prefix + key], args=args))


class AsyncRedisRateLimiter:
    """Fails open: with Redis away (or slower than ``TIMEOUT``) a request is admitted
    rather than the whole API refused; the login and reset limits, which guard
    against guessing, still answer 503 then (``RedisRateLimiter`` raises)."""

    WARN_EVERY = 10.0

    def __init__(self, client: aioredis.Redis, prefix: str = "ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW)
        self._warned_at = float("-inf")
        # Concurrent requests' takes in one round trip (``infra.redis.batching``).
        self._batch = CommandBatcher(client)
        # A take's member only needs to be unique in its key: a process's random
        # prefix and a counter, not a uuid4 (an os.urandom call) per request.
        self._members = _members()

    async def take(self, key: str, limit: int, window_seconds: float) -> RateCount:
        member = next(self._members)
        command = (self._prefix + key, time.time(), window_seconds, limit, member)
        try:
            async with asyncio.timeout(TIMEOUT):
                try:
                    answer = await self._batch.execute("EVALSHA", self._script.sha, 1, *command)
                except redis.exceptions.NoScriptError:  # Redis restarted, or flushed
                    await self._client.script_load(_SLIDING_WINDOW)
                    answer = await self._batch.execute("EVALSHA", self._script.sha, 1, *command)
                return _count(answer)
        except (redis.RedisError, TimeoutError) as error:
            if time.monotonic() - self._warned_at > self.WARN_EVERY:
                self._warned_at = time.monotonic()
                log.warning("route rate limits unavailable, admitting requests: %r", error)
            return RateCount(True, limit, window_seconds)

    async def close(self) -> None:
        await self._client.aclose()


def _members() -> Iterator[str]:
    prefix = uuid.uuid4().hex
    return (f"{prefix}.{n:x}" for n in itertools.count())


class InProcessRateLimiter:
    SWEEP_EVERY = 10_000
    """Takes between two sweeps of the keys whose window has passed (every client
    address seen would stay in memory otherwise)."""

    def __init__(self) -> None:
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._takes = 0

    def take(self, key: str, limit: int, window_seconds: float) -> RateCount:
        now = time.monotonic()
        with self._lock:
            self._takes += 1
            if self._takes % self.SWEEP_EVERY == 0:
                # One instance's keys share a window (the users' or the routes').
                horizon = now - window_seconds
                for stale in [k for k, h in self._hits.items() if not h or h[-1] <= horizon]:
                    del self._hits[stale]
            hits = self._hits[key]
            while hits and hits[0] <= now - window_seconds:
                hits.popleft()
            admitted = len(hits) < limit
            if admitted:
                hits.append(now)
            return RateCount(admitted, limit - len(hits), window_seconds - (now - hits[0]))


class AsyncInProcessRateLimiter:
    """The in-process limiter on the event loop: it never waits on I/O (its lock is
    held for microseconds), so it is called directly."""

    def __init__(self) -> None:
        self._limiter = InProcessRateLimiter()

    async def take(self, key: str, limit: int, window_seconds: float) -> RateCount:
        return self._limiter.take(key, limit, window_seconds)

    async def close(self) -> None:
        pass
