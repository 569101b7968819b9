"""Sliding-window rate limiters behind the ``RateLimiter`` port: Redis (shared by
every process) and in-process (the embedded default, one process only)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque

import redis

# Trim the window, count, and admit or refuse atomically inside Redis.
_SLIDING_WINDOW = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return false
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW)

    def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        result = self._script(
            keys=[self._prefix + key],
            args=[time.time(), window_seconds, limit, uuid.uuid4().hex],
        )
        return None if result is None else float(result)


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - window_seconds:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0] + window_seconds - now
            hits.append(now)
            return None
