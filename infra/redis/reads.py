"""What the read API's Redis caches share: their asyncio client's settings, a circuit
breaker that sends requests straight to Postgres for a while after Redis failed, the
outcome counters, and their /metrics collector."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import redis
import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

TIMEOUT = 1.0
"""Seconds a cache command may take before the read goes to Postgres. Not less: on
a starved event loop (an overloaded process) a healthy Redis's answers are read
late, and falling back to Postgres then only adds load."""
BREAKER_SECONDS = 2.0
"""After a failure, requests skip Redis this long (no connection timeout each)."""
OUTCOMES = ("hit", "miss", "error", "bypass")


def reader_client(url: str) -> aioredis.Redis:
    """No retries, and each call timed as a whole by the caller (``asyncio.timeout``
    with ``TIMEOUT``): redis-py's own socket timeout arms two timers per command, a
    visible share of a cache hit (bench/README.md, "Product detail from the Redis
    cache")."""
    return aioredis.Redis.from_url(
        url, retry=AsyncRetry(NoBackoff(), 0), socket_timeout=None, socket_connect_timeout=TIMEOUT
    )


class Breaker:
    """Counts each read's outcome (``OUTCOMES``); after a failure, ``is_open`` for
    ``BREAKER_SECONDS``."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._closed_until = 0.0
        self.counts: Counter[str] = Counter()

    def is_open(self) -> bool:
        if time.monotonic() < self._closed_until:
            self.counts["bypass"] += 1
            return True
        return False

    def failed(self, error: redis.RedisError | TimeoutError) -> None:
        self.counts["error"] += 1
        now = time.monotonic()
        if now >= self._closed_until:  # once per opening, not per request in flight
            log.warning(
                "%s unavailable (%s %s): Postgres only for %.0fs",
                self._what,
                type(error).__name__,
                error,
                BREAKER_SECONDS,
            )
        self._closed_until = now + BREAKER_SECONDS


class CacheCollector(Collector):
    """A cache's read outcomes, for /metrics."""

    def __init__(self, metric: str, what: str, breaker: Breaker) -> None:
        self._metric = metric
        self._what = what
        self._breaker = breaker

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            self._metric,
            f"{self._what} by cache outcome: hit, miss (then Postgres), error (Redis "
            "failed, then Postgres), bypass (breaker open, Postgres only)",
            labels=["result"],
        )
        for result in OUTCOMES:
            family.add_metric([result], self._breaker.counts[result])
        yield family
