"""The cart view in Redis (``projections.ordering.carts.CartStore``): a hash per cart,
``<prefix>cart:<id>`` with ``version`` and ``state`` (JSON).

A write is a compare-and-set on the version (a Lua script): an event is folded onto
the state of the version just before it, so an older or repeated event never
overwrites a newer state. A cart Redis does not have (evicted, flushed, or never
written), or holds at a version older than the event's predecessor, is rebuilt from
the cart's events, on the next event or on the next read.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
import redis

from projections.ordering.carts import CartHistory, CartState, cart_state, rebuilt

_SET_IF_VERSION = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return current end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3])
return -1
"""
MAX_ATTEMPTS = 5


class RedisCartStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._set_if_version = client.register_script(_SET_IF_VERSION)

    def _key(self, cart_id: UUID) -> str:
        return f"{self._prefix}cart:{cart_id}"

    def apply(self, cart_id: UUID, event: Any, history: CartHistory) -> None:
        version = int(event.originator_version)
        for _ in range(MAX_ATTEMPTS):
            stored, state = self._read(cart_id)
            if stored >= version:
                return  # older or repeated: the stored cart already includes it
            if stored == version - 1:
                new_state: CartState | None = cart_state(state, event)
            else:  # missing or behind: rebuild from every event
                new_state = rebuilt(history.cart_events(cart_id))
            if new_state is None or self._write(cart_id, stored, new_state):
                return
        raise RuntimeError(f"cart {cart_id} kept changing under the projection")

    def get_or_rebuild(self, cart_id: UUID, history: CartHistory) -> CartState | None:
        stored, state = self._read(cart_id)
        if state is not None:
            return state
        state = rebuilt(history.cart_events(cart_id))
        if state is not None:
            self._write(cart_id, stored, state)
        return state

    def _read(self, cart_id: UUID) -> tuple[int, CartState | None]:
        version, state = self._redis.hmget(self._key(cart_id), ["version", "state"])
        if version is None or state is None:
            return 0, None
        loaded: CartState = orjson.loads(state)
        return int(version), loaded

    def _write(self, cart_id: UUID, expected: int, state: CartState) -> bool:
        result = self._set_if_version(
            keys=[self._key(cart_id)], args=[expected, state["version"], orjson.dumps(state)]
        )
        return int(result) == -1
