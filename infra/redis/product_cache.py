"""The product-detail cache in Redis: the read API's ``ProductCache`` (asyncio
client, circuit breaker, counters for /metrics) and the follower's
``CacheInvalidator`` (sync client). Ports and the reasoning: ``projections.catalog.product_cache``.

Keys, under a configurable prefix ``P``:

- ``P:product:g<G>:follower``: hash {epoch, floor, position}, no TTL: where the
  follower of generation G is, so a restart resumes there with the cache warm;
- ``P:product:state``: ``G:epoch:floor``, the cache the follower vouches for; it
  expires ``STATE_TTL`` after the follower was last caught up with the feed, and
  without it the cache is neither read nor written (a dead follower cannot leave
  stale entries served);
- ``P:product:g<G>:<epoch>:<id>``: ``b"<revision> <status> <seller>\\n" + JSON``,
  or a tombstone ``b"<revision> -"``.

When Redis loses its memory (restart without persistence, FLUSHALL) the follower's
hash is gone with the entries: the follower starts a new *epoch* (a fresh key space)
at the feed's head, its *floor*. A reader's write must come from a snapshot at or
after the floor (an older snapshot may predate a change whose tombstone was lost),
and is made only while the state it used is still the state (a script checks both
and the revision guard atomically).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import cast
from uuid import UUID

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.redis import search_cache
from infra.redis.batching import CommandBatcher
from infra.redis.reads import TIMEOUT, Breaker, reader_client
from projections.catalog.product_cache import CachedProduct, CacheUnavailable, ProductSnapshot

log = logging.getLogger(__name__)

STATE_TTL_MS = 5_000
TOMBSTONE_TTL_MS = 60_000
"""Longer than any reader takes from its Postgres read to its guarded write."""
_TOMBSTONE = b"-"

# The per-key version guard: set only if newer than what is there, or of the same
# revision as a tombstone there (the reader read the very row the tombstone stands
# for). With a second key, also only while that key (the vouched state) still
# holds ARGV[4].
_GUARDED_SET = """
if #KEYS == 2 and redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
    local revision, stored = tonumber(ARGV[1]), tonumber(string.match(current, '^%d+'))
    if stored > revision then return 0 end
    if stored == revision and not (string.find(current, '^%d+ %-$')
            and not string.find(ARGV[2], '^%d+ %-$')) then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# The follower's hash, created at the floor unless it exists; its current fields.
_RESUME = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'floor', ARGV[2], 'position', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'epoch', 'floor', 'position')
"""

# Record the position (never backwards) and, if given, vouch for the cache; 0 when
# the hash is gone or has another epoch (Redis lost its memory meanwhile).
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'position')) then
    redis.call('HSET', KEYS[1], 'position', ARGV[2])
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
return 1
"""


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.state = f"{prefix}product:state"
        self._prefix = prefix

    def follower(self, generation: int) -> str:
        return f"{self._prefix}product:g{generation}:follower"

    def entry(self, generation: int, epoch: str, product_id: UUID) -> str:
        return f"{self._prefix}product:g{generation}:{epoch}:{product_id}"


def _state(generation: int, epoch: str, floor: int) -> bytes:
    return f"{generation}:{epoch}:{floor}".encode()


def _parse_state(state: bytes) -> tuple[int, str, int]:
    generation, epoch, floor = state.decode().split(":")
    return int(generation), epoch, int(floor)


class RedisProductCache:
    """The read API's side (one per process, used on its event loop)."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: float) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._guarded_set = client.register_script(_GUARDED_SET)
        # Concurrent hits' MGETs in one round trip (``infra.redis.batching``).
        self._batch = CommandBatcher(client)
        self._state: bytes | None = None
        self._state_parts: tuple[int, str, int] | None = None
        self.breaker = Breaker("product cache")
        self.counts = self.breaker.counts

    async def get(self, product_id: UUID) -> CachedProduct | None:
        if self.breaker.is_open():
            return None
        try:
            async with asyncio.timeout(TIMEOUT):
                if self._state is None:
                    self._use(cast("bytes | None", await self._client.get(self._keys.state)))
                if self._state_parts is None:
                    self.counts["miss"] += 1
                    return None
                generation, epoch, _ = self._state_parts
                # One round trip: the entry, and whether the follower still vouches.
                state, entry = cast(
                    "list[bytes | None]",
                    await self._batch.execute(
                        "MGET", self._keys.state, self._keys.entry(generation, epoch, product_id)
                    ),
                )
        except (redis.RedisError, TimeoutError) as error:
            self._failed(error)
            return None
        if state != self._state:
            self._use(state)  # the follower moved on (swap, new epoch) or stopped vouching
            entry = None
        hit = _decode(entry, generation) if entry is not None else None
        self.counts["hit" if hit else "miss"] += 1
        return hit

    async def put(self, snapshot: ProductSnapshot, body: bytes) -> None:
        # No state after a failure, until a read succeeds once the breaker has closed.
        if self._state is None or self._state_parts is None:
            return
        generation, epoch, floor = self._state_parts
        if snapshot.generation != generation or snapshot.head < floor:
            return
        header = f"{snapshot.revision} {snapshot.status} {snapshot.seller_id}\n".encode()
        key = self._keys.entry(generation, epoch, snapshot.document["id"])
        try:
            async with asyncio.timeout(TIMEOUT):
                await self._guarded_set(
                    keys=[key, self._keys.state],
                    args=[snapshot.revision, header + body, self._ttl_ms, self._state],
                )
        except (redis.RedisError, TimeoutError) as error:
            self._failed(error)

    async def close(self) -> None:
        await self._client.aclose()

    def _use(self, state: bytes | None) -> None:
        self._state = state
        self._state_parts = _parse_state(state) if state is not None else None

    def _failed(self, error: redis.RedisError | TimeoutError) -> None:
        self.breaker.failed(error)
        self._state = self._state_parts = None


def _decode(entry: bytes, generation: int) -> CachedProduct | None:
    header, _, body = entry.partition(b"\n")
    fields = header.split(b" ")
    if len(fields) != 3 or fields[1] == _TOMBSTONE:
        return None
    return CachedProduct(
        status=fields[1].decode(),
        seller_id=UUID(fields[2].decode()),
        body=body,
        revision=int(fields[0]),
        generation=generation,
    )


class RedisCacheInvalidator:
    """The follower's side (one thread). With ``search_refresh`` (seconds), it also
    vouches for the search cache (``infra.redis.search_cache``): each time it is caught
    up it writes the search state, whose version moves to its position at most that
    often."""

    def __init__(self, client: redis.Redis, prefix: str, search_refresh: float | None) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._search_state = search_cache.state_key(prefix)
        self._search_refresh = search_refresh
        self._search_version: dict[int, tuple[str, float]] = {}
        """Generation -> the version published, and when it was."""
        self._guarded_set = client.register_script(_GUARDED_SET)
        self._resume = client.register_script(_RESUME)
        self._advance = client.register_script(_ADVANCE)
        self._epochs: dict[int, tuple[str, int]] = {}

    def resume(self, generation: int, head: Callable[[], int]) -> int:
        floor = head()
        try:
            epoch, stored_floor, position = self._resume(
                keys=[self._keys.follower(generation)], args=[secrets.token_hex(4), floor]
            )
        except redis.RedisError as error:
            raise CacheUnavailable(str(error)) from error
        self._epochs[generation] = (epoch.decode(), int(stored_floor))
        return int(position)

    def invalidate(
        self,
        generation: int,
        changes: list[tuple[UUID, int]],
        position: int,
        caught_up: bool,
        *,
        categories_position: int,
    ) -> bool:
        epoch, floor = self._epochs[generation]
        pipe = self._client.pipeline(transaction=False)
        for product_id, revision in changes:
            self._guarded_set(
                keys=[self._keys.entry(generation, epoch, product_id)],
                args=[revision, f"{revision} ".encode() + _TOMBSTONE, TOMBSTONE_TTL_MS],
                client=pipe,
            )
        state = _state(generation, epoch, floor) if caught_up else b""
        if caught_up and self._search_refresh is not None:
            version = self._search_version_at(generation, f"{position}.{categories_position}")
            pipe.set(
                self._search_state,
                search_cache.search_state(generation, epoch, version),
                px=STATE_TTL_MS,
            )
        self._advance(
            keys=[self._keys.follower(generation), self._keys.state],
            args=[epoch, position, state, STATE_TTL_MS],
            client=pipe,
        )
        try:
            results = pipe.execute()
        except redis.RedisError as error:
            raise CacheUnavailable(str(error)) from error
        return bool(results[-1])

    def _search_version_at(self, generation: int, position: str) -> str:
        assert self._search_refresh is not None
        version, since = self._search_version.get(generation, ("", -self._search_refresh))
        now = time.monotonic()
        if position != version and now - since >= self._search_refresh:
            version, since = position, now
            self._search_version[generation] = (version, since)
        return version

    def close(self) -> None:
        self._client.close()


def connect(
    url: str, prefix: str, ttl_seconds: float, search_refresh: float | None
) -> tuple[RedisProductCache, RedisCacheInvalidator]:
    """Both sides over ``url``, with short timeouts and no retries: a failing Redis
    must cost a request no more than ``TIMEOUT`` (then the breaker spares the next)."""
    reader = reader_client(url)
    follower = redis.Redis.from_url(
        url, retry=Retry(NoBackoff(), 0), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )
    return (
        RedisProductCache(reader, prefix, ttl_seconds),
        RedisCacheInvalidator(follower, prefix, search_refresh),
    )
