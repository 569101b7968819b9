"""The search answer cache (``infra.redis.search_cache``) through the real read API, Redis,
Postgres and the product cache's follower, which vouches for it: a repeated search
is answered from Redis; a change to the catalog reaches searches within the refresh
interval; a consistency token, a dead follower or a dead Redis never serve an old
answer or an error; identical searches in flight share one computation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
import redis

from domain.money import Money
from infra.redis.search_cache import RedisSearchCache, connect, search_state, state_key
from infra.settings import Settings
from infra.wiring.process import Container
from tests.integration.test_product_cache import (
    ADMIN,
    SELLER,
    api,
    new_product,
    shop,
)
from tests.integration.test_product_cache import prefix as prefix  # the fixture
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

REFRESH = 0.2


@pytest.fixture
def searchable(settings: Settings, redis_url: str, prefix: str) -> Iterator[Container]:
    """Projections and the cache follower running, search answers cached."""
    container = shop(
        settings.model_copy(update={"search_cache_refresh": REFRESH}), redis_url, prefix
    )
    container.start_projections()
    try:
        yield container
    finally:
        container.close()


def cache_of(container: Container) -> RedisSearchCache:
    assert container.search_cache is not None
    return container.search_cache


def word_of(product_id: UUID) -> str:
    """A word of the product's name (``new_product`` names it ``Cached thing <hex4>``)."""
    return product_id.hex[:4]


async def search(client: httpx.AsyncClient, text: str, **kw: str) -> httpx.Response:
    answer = await client.get("/search", params={"q": text}, headers=kw)
    assert answer.status_code == 200, answer.text
    return answer


def price_in(answer: httpx.Response, product_id: UUID) -> str | None:
    for item in answer.json()["items"]:
        if item["id"] == str(product_id):
            return str(item["price"]["amount"])
    return None


def test_a_repeated_search_is_a_hit_and_a_change_reaches_search_within_the_refresh(
    searchable: Container,
) -> None:
    asyncio.run(check_hit_then_change(searchable))


async def check_hit_then_change(container: Container) -> None:
    product_id, token = new_product(container, "12.50")
    cache = cache_of(container)
    async with api(container) as client:
        fresh = await search(client, word_of(product_id), **{"X-Consistency-Token": token})
        assert price_in(fresh, product_id) == "12.50"

        async def cached_and_current() -> bool:
            answer = await search(client, word_of(product_id))
            return price_in(answer, product_id) == "12.50" and cache.breaker.counts["hit"] > 0

        await eventually(cached_and_current, "the follower vouches and the answer is stored")
        hits = cache.breaker.counts["hit"]
        again = await search(client, word_of(product_id))
        assert cache.breaker.counts["hit"] == hits + 1
        assert again.content == (await search(client, word_of(product_id))).content

        written = container.catalog_commands.change_price(
            SELLER, product_id, Money.of("14.00", "EUR")
        )
        # Read-your-writes: the token skips the cache, whatever it holds.
        mine = await search(
            client, word_of(product_id), **{"X-Consistency-Token": str(written.position)}
        )
        assert price_in(mine, product_id) == "14.00"

        async def repriced() -> bool:
            return price_in(await search(client, word_of(product_id)), product_id) == "14.00"

        await eventually(repriced, "the new price in a search without a token")


def test_a_renamed_category_reaches_the_facets_of_cached_searches(searchable: Container) -> None:
    asyncio.run(check_renamed_category(searchable))


async def check_renamed_category(container: Container) -> None:
    product_id, token = new_product(container)
    async with api(container) as client:
        await search(client, word_of(product_id), **{"X-Consistency-Token": token})

        async def shelf() -> dict[str, Any] | None:
            answer = await search(client, word_of(product_id))
            facets = answer.json()["facets"]["categories"]
            return next((c for c in facets if c["name"].startswith("Shelf ")), None)

        async def from_cache() -> bool:
            hits = cache_of(container).breaker.counts["hit"]
            await shelf()
            return cache_of(container).breaker.counts["hit"] > hits

        # Let the version take in the product's own changes first (they would drop
        # the answer themselves): from here on only the rename changes anything.
        await asyncio.sleep(5 * REFRESH)
        await eventually(from_cache, "a cached answer")
        found = await shelf()
        assert found is not None
        # A rename changes no product row, only the names the facets show.
        container.catalog_commands.rename_category(ADMIN, UUID(found["id"]), "Renamed shelf")

        async def renamed() -> bool:
            now = await shelf()
            return now is None  # no facet named "Shelf ..." any more

        await eventually(renamed, "the new category name in a cached search's facets")


def test_a_stopped_follower_turns_the_cache_off(searchable: Container) -> None:
    asyncio.run(check_stopped_follower(searchable))


async def check_stopped_follower(container: Container) -> None:
    product_id, token = new_product(container, "20.00")
    cache = cache_of(container)
    async with api(container) as client:
        await search(client, word_of(product_id), **{"X-Consistency-Token": token})

        async def hit() -> bool:
            before = cache.breaker.counts["hit"]
            await search(client, word_of(product_id))
            return cache.breaker.counts["hit"] > before

        await eventually(hit, "a hit")
        assert container.cache_follower is not None
        container.cache_follower.stop()
        container.catalog_commands.change_price(SELLER, product_id, Money.of("21.00", "EUR"))
        # Without the follower nothing drops the answer: it must stop being served
        # once the follower's vouching expires.

        async def repriced() -> bool:
            return price_in(await search(client, word_of(product_id)), product_id) == "21.00"

        await eventually(repriced, "the change, once nobody vouches for the cached answer")


def test_bad_search_input_is_refused_through_the_cache_and_nothing_is_stored(
    searchable: Container, prefix: str
) -> None:
    asyncio.run(check_refused(searchable, prefix))


async def check_refused(container: Container, prefix: str) -> None:
    product_id, token = new_product(container)
    async with api(container) as client:
        await search(client, word_of(product_id), **{"X-Consistency-Token": token})
        client_sync = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        eventually(lambda: client_sync.exists(state_key(prefix)), "a vouched cache")
        stored = set(client_sync.scan_iter(match=f"{prefix}search:*:*"))
        refusals: list[tuple[dict[str, str], int]] = [
            ({"q": "!!! ???"}, 400),  # no words: refused by the search itself
            ({"q": word_of(product_id), "min_price": "5"}, 400),  # a range without currency
            ({"q": word_of(product_id), "limit": "0"}, 422),  # refused by the parameters
        ]
        for params, status in refusals * 2:
            refused = await client.get("/search", params=params)
            assert refused.status_code == status, params
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert set(client_sync.scan_iter(match=f"{prefix}search:*:*")) == stored
        client_sync.close()


def test_identical_searches_in_flight_share_one_answer(redis_url: str, prefix: str) -> None:
    asyncio.run(check_single_flight(redis_url, prefix))


async def check_single_flight(redis_url: str, prefix: str) -> None:
    setter = redis.Redis.from_url(redis_url)
    setter.set(state_key(prefix), search_state(1, "e", "7.0"), px=60_000)
    cache = connect(redis_url, prefix, 60)
    calls = 0

    async def slow_answer() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return b'{"items": []}'

    try:
        answers = await asyncio.gather(*(cache.fetch(b"same", slow_answer) for _ in range(10)))
        assert answers == [b'{"items": []}'] * 10
        assert calls == 1
        assert await cache.fetch(b"same", slow_answer) == b'{"items": []}'
        assert calls == 1, "the stored answer"
        setter.set(state_key(prefix), search_state(1, "e", "8.0"), px=60_000)
        await cache.fetch(b"same", slow_answer)
        assert calls == 2, "a new version is a new key space"
    finally:
        await cache.close()
        setter.close()


def test_searches_are_answered_when_redis_is_down() -> None:
    asyncio.run(check_redis_down())


async def check_redis_down() -> None:
    cache = connect("redis://127.0.0.1:1/0", "down:", 60)

    async def answer() -> bytes:
        return b"{}"

    try:
        assert await cache.fetch(b"q", answer) == b"{}"
        assert cache.breaker.counts["error"] == 1
        assert await cache.fetch(b"q", answer) == b"{}"
        assert cache.breaker.counts["bypass"] == 1, "the breaker spares the next request"
    finally:
        await cache.close()
