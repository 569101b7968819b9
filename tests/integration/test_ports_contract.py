"""Contract tests of the write side's ports, run against every adapter.

RateLimiter: the in-process limiter and the Redis one must behave alike.
IdempotencyStore: the Postgres store, driven through ``commands.idempotency``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis
import redis.asyncio as aioredis

from commands.errors import IdempotencyKeyReused, RequestInProgress
from commands.idempotency import Idempotency
from commands.ports import AsyncRateLimiter, RateCount, RateLimiter, StoredResponse
from infra.postgres.idempotency import PostgresIdempotencyStore
from infra.redis.ratelimit import (
    AsyncInProcessRateLimiter,
    AsyncRedisRateLimiter,
    InProcessRateLimiter,
    RedisRateLimiter,
)
from infra.redis.reads import reader_client
from infra.wiring.process import Container
from tests.support.polling import eventually
from tests.support.server import free_port

pytestmark = pytest.mark.integration

WINDOW = 1.0  # wide enough that a loaded machine makes LIMIT hits within it
LIMIT = 3


# --- RateLimiter ---------------------------------------------------------------------


@pytest.fixture(params=["in_process", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "in_process":
        yield InProcessRateLimiter()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"test-ratelimit-{uuid4().hex}:"
    try:
        yield RedisRateLimiter(client, prefix=prefix)
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def unique_key() -> str:
    return f"login:{uuid4().hex}"


def hit(limiter: RateLimiter, key: str, limit: int, window: float) -> float | None:
    """None when admitted, else the wait."""
    count = limiter.take(key, limit, window)
    return None if count.admitted else count.reset_seconds


class TestRateLimiterContract:
    def test_each_count_says_what_remains_and_when_the_oldest_leaves(
        self, limiter: RateLimiter
    ) -> None:
        key = unique_key()
        counts = [limiter.take(key, LIMIT, WINDOW) for _ in range(LIMIT + 1)]
        assert [(c.admitted, c.remaining) for c in counts] == [
            (True, 2),
            (True, 1),
            (True, 0),
            (False, 0),
        ]
        resets = [c.reset_seconds for c in counts]
        assert all(0 < reset <= WINDOW for reset in resets)
        assert resets == sorted(resets, reverse=True)  # the same oldest attempt, nearer

    def test_allows_limit_hits_in_the_window_then_refuses_with_a_retry_after(
        self, limiter: RateLimiter
    ) -> None:
        key = unique_key()
        assert [hit(limiter, key, LIMIT, WINDOW) for _ in range(LIMIT)] == [None] * LIMIT
        retry_after = hit(limiter, key, LIMIT, WINDOW)
        assert retry_after is not None
        assert 0 < retry_after <= WINDOW
        again = hit(limiter, key, LIMIT, WINDOW)
        assert again is not None
        assert 0 < again <= retry_after  # the wait only shrinks

    def test_allows_again_once_the_window_has_passed(self, limiter: RateLimiter) -> None:
        key = unique_key()
        for _ in range(LIMIT):
            assert hit(limiter, key, LIMIT, WINDOW) is None
        retry_after = hit(limiter, key, LIMIT, WINDOW)
        assert retry_after is not None
        time.sleep(retry_after + 0.05)
        # Refused attempts did not count: a whole new allowance.
        assert [hit(limiter, key, LIMIT, WINDOW) for _ in range(LIMIT)] == [None] * LIMIT
        assert hit(limiter, key, LIMIT, WINDOW) is not None

    def test_the_window_slides_and_retry_after_names_the_oldest_hit(
        self, limiter: RateLimiter
    ) -> None:
        key, window, gap = unique_key(), 0.6, 0.3
        assert hit(limiter, key, LIMIT, window) is None
        time.sleep(gap)
        assert hit(limiter, key, LIMIT, window) is None
        assert hit(limiter, key, LIMIT, window) is None
        retry_after = hit(limiter, key, LIMIT, window)
        assert retry_after is not None
        assert 0 < retry_after <= window - gap  # the oldest hit leaves first
        time.sleep(retry_after + 0.03)
        assert hit(limiter, key, LIMIT, window) is None  # only the oldest has left
        assert hit(limiter, key, LIMIT, window) is not None

    def test_keys_are_counted_separately(self, limiter: RateLimiter) -> None:
        first, second = unique_key(), unique_key()
        for _ in range(LIMIT):
            assert hit(limiter, first, LIMIT, WINDOW) is None
        assert hit(limiter, first, LIMIT, WINDOW) is not None
        assert hit(limiter, second, LIMIT, WINDOW) is None

    def test_concurrent_hits_never_admit_more_than_the_limit(self, limiter: RateLimiter) -> None:
        key, threads, limit = unique_key(), 16, 5
        start = threading.Barrier(threads)
        results: list[float | None] = []
        lock = threading.Lock()

        def attempt() -> None:
            start.wait()
            result = hit(limiter, key, limit, 5.0)
            with lock:
                results.append(result)

        workers = [threading.Thread(target=attempt) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        assert len(results) == threads
        assert sum(r is None for r in results) == limit


# --- AsyncRateLimiter (the HTTP edge's) ----------------------------------------------


def takes(make: Callable[[], AsyncRateLimiter], key: str, limit: int, n: int) -> list[RateCount]:
    """``n`` attempts on one event loop, the limiter made (and closed) on it."""

    async def run() -> list[RateCount]:
        limiter = make()
        try:
            return [await limiter.take(key, limit, WINDOW) for _ in range(n)]
        finally:
            await limiter.close()

    return asyncio.run(run())


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_the_async_limiters_count_as_the_others_do(backend: str, redis_url: str) -> None:
    prefix = f"test-ratelimit-{uuid4().hex}:"

    def make() -> AsyncRateLimiter:
        if backend == "in_process":
            return AsyncInProcessRateLimiter()
        return AsyncRedisRateLimiter(reader_client(redis_url), prefix=prefix)

    counts = takes(make, unique_key(), LIMIT, LIMIT + 1)
    assert [(c.admitted, c.remaining) for c in counts] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    assert 0 < counts[-1].reset_seconds <= WINDOW


def test_the_async_redis_limiter_admits_while_redis_is_away() -> None:
    """Redis away must not refuse the whole API: every request is admitted."""
    nowhere = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    counts = takes(lambda: AsyncRedisRateLimiter(nowhere), unique_key(), 1, 3)
    assert [c.admitted for c in counts] == [True, True, True]


# --- IdempotencyStore (Postgres) through Idempotency ---------------------------------


class Handler:
    """A command handler that counts its runs; optionally waits or fails."""

    def __init__(
        self,
        response: StoredResponse | None = None,
        *,
        fail: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self.response = response or StoredResponse(201, {"id": str(uuid4()), "items": [1, 2]})
        self.fail = fail
        self.gate = gate
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self) -> StoredResponse:
        with self._lock:
            self.runs += 1
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("the command failed")
        return self.response


@pytest.fixture
def idempotency(container: Container) -> Callable[..., Idempotency]:
    store = PostgresIdempotencyStore(container.pool)

    def make(key: str | None, scope: str = "orders.create") -> Idempotency:
        return Idempotency(store, scope, key, caller="user:contract")

    return make


BODY: dict[str, Any] = {"sku": "ABC-1", "quantity": 2, "address": {"city": "York", "line1": "1"}}


class TestPostgresIdempotency:
    def test_same_key_and_body_replays_the_first_response_and_runs_once(
        self, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, handler = uuid4().hex, Handler()
        assert idempotency(key).run(BODY, handler) == (handler.response, False)
        # The same body with its keys in another order is the same request.
        reordered = {"address": {"line1": "1", "city": "York"}, "quantity": 2, "sku": "ABC-1"}
        assert idempotency(key).run(reordered, Handler()) == (handler.response, True)
        assert idempotency(key).run(BODY, handler) == (handler.response, True)
        assert handler.runs == 1

    def test_same_key_with_another_body_is_refused(
        self, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, handler, other = uuid4().hex, Handler(), Handler()
        idempotency(key).run(BODY, handler)
        with pytest.raises(IdempotencyKeyReused):
            idempotency(key).run({**BODY, "quantity": 3}, other)
        assert other.runs == 0
        assert idempotency(key).run(BODY, other) == (handler.response, True)

    def test_a_failed_request_releases_its_key_so_a_retry_runs(
        self, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, failing = uuid4().hex, Handler(fail=True)
        with pytest.raises(RuntimeError):
            idempotency(key).run(BODY, failing)
        retry = Handler()
        assert idempotency(key).run(BODY, retry) == (retry.response, False)
        assert idempotency(key).run(BODY, Handler()) == (retry.response, True)
        assert (failing.runs, retry.runs) == (1, 1)

    def test_concurrent_requests_with_one_key_run_the_handler_once(
        self, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, clients = uuid4().hex, 8
        handler = Handler()
        start = threading.Barrier(clients)
        outcomes: list[tuple[StoredResponse, bool] | BaseException] = []
        answered = threading.Condition()

        def first_handler() -> StoredResponse:
            # Hold the claim until every other request has been answered.
            with answered:
                answered.wait_for(lambda: len(outcomes) == clients - 1, timeout=10)
            return handler()

        def request() -> None:
            start.wait()
            try:
                outcome: tuple[StoredResponse, bool] | BaseException = idempotency(key).run(
                    BODY, first_handler
                )
            except RequestInProgress as error:
                outcome = error
            with answered:
                outcomes.append(outcome)
                answered.notify_all()

        threads = [threading.Thread(target=request) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

        assert handler.runs == 1
        assert len(outcomes) == clients
        assert outcomes[-1] == (handler.response, False)
        refused = outcomes[:-1]
        assert all(isinstance(o, RequestInProgress) for o in refused), refused
        assert all(
            o.headers.get("Retry-After") == "1" for o in refused if isinstance(o, RequestInProgress)
        )
        assert idempotency(key).run(BODY, Handler()) == (handler.response, True)

    def test_a_claim_abandoned_by_a_crashed_request_is_taken_over(
        self, container: Container, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, gate = uuid4().hex, threading.Event()
        stuck = Handler(gate=gate)
        first = threading.Thread(target=lambda: idempotency(key).run(BODY, stuck))
        first.start()
        try:
            eventually(lambda: stuck.runs, "the first run to start", timeout=5, interval=0.01)
            assert stuck.runs == 1
            with pytest.raises(RequestInProgress):
                idempotency(key).run(BODY, Handler())
            with container.pool.connection() as conn:
                conn.execute(
                    "UPDATE public.idempotency_keys SET claimed_at = now() - interval '10 minutes'"
                    " WHERE key = %s",
                    (key,),
                )
            takeover = Handler()
            assert idempotency(key).run(BODY, takeover) == (takeover.response, False)
            assert takeover.runs == 1
        finally:
            gate.set()
            first.join(10)

    def test_keys_are_scoped_and_no_key_means_no_deduplication(
        self, container: Container, idempotency: Callable[..., Idempotency]
    ) -> None:
        key, first, second = uuid4().hex, Handler(), Handler()
        assert idempotency(key, "orders.create").run(BODY, first) == (first.response, False)
        assert idempotency(key, "payments.refund").run(BODY, second) == (second.response, False)

        unkeyed = Handler()
        for _ in range(2):
            assert idempotency(None).run(BODY, unkeyed) == (unkeyed.response, False)
        assert unkeyed.runs == 2
        with container.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM public.idempotency_keys").fetchone()
        assert row is not None and row[0] == 2

    def test_expired_keys_are_purged_and_then_run_afresh(
        self, container: Container, idempotency: Callable[..., Idempotency]
    ) -> None:
        old, recent, handler = uuid4().hex, uuid4().hex, Handler()
        idempotency(old).run(BODY, handler)
        idempotency(recent).run(BODY, Handler())
        with container.pool.connection() as conn:
            conn.execute(
                "UPDATE public.idempotency_keys SET claimed_at = now() - interval '25 hours' "
                "WHERE key = %s",
                (old,),
            )
        store = PostgresIdempotencyStore(container.pool)
        assert store.purge_expired() == 1
        again = Handler()
        assert idempotency(old).run(BODY, again) == (again.response, False)
        assert idempotency(recent).run(BODY, Handler())[1] is True
