"""The product-detail cache over the machine's Redis and Postgres: products written
through the real catalog commands, projected by the embedded runner, invalidated
by the cache follower (a thread, as in ``shop run``), read through the read API.

Each test has a key prefix of its own, so parallel runs never share keys; "Redis
lost its memory" deletes that prefix's keys rather than flushing a shared server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from domain.access import Principal
from domain.errors import AuthenticationRequired
from domain.money import Money
from infra.entrypoints import problems
from infra.entrypoints.rebuild import rebuild
from infra.redis.product_cache import RedisProductCache, connect
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from projections.catalog.product_cache import ProductSnapshot
from projections.catalog.product_queries import product_detail
from read_api import catalog as catalog_router
from streams.product_cache_follower import ProductCacheFollower
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))
SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
OTHER_SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
CUSTOMER = Principal(uuid4(), uuid4(), frozenset({"customer"}))
VIEWERS = {"admin": ADMIN, "seller": SELLER, "other-seller": OTHER_SELLER, "customer": CUSTOMER}


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test-{uuid4().hex[:12]}:"
    yield name
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    forget(client, name)
    client.close()


def forget(client: redis.Redis, prefix: str) -> int:
    """What a Redis that lost its memory looks like, for this test's keys only."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    return int(client.delete(*keys)) if keys else 0


def shop(settings: Settings, redis_url: str | None, prefix: str) -> Container:
    container = bootstrap(
        settings.model_copy(update={"redis_url": redis_url, "product_cache_prefix": prefix})
    )
    container.migrate()
    return container


@pytest.fixture
def cached(settings: Settings, redis_url: str, prefix: str) -> Iterator[Container]:
    """A migrated container over Redis, projections and cache follower running."""
    container = shop(settings, redis_url, prefix)
    container.start_projections()
    try:
        yield container
    finally:
        container.close()


async def _authenticate(token: str | None) -> Principal:
    if token not in VIEWERS:
        raise AuthenticationRequired("unknown test token")
    return VIEWERS[token]


@asynccontextmanager
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The catalog read API over this container's services (viewers by test token)."""
    app = FastAPI()
    problems.install(app)
    app.state.read = dataclasses.replace(container.read_services(), authenticate=_authenticate)
    app.include_router(catalog_router.router)
    await container.read_pool.open()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            yield client
    finally:
        for cache in (container.product_cache, container.search_cache):
            if cache is not None:
                await cache.close()
        await container.read_pool.close()


def as_viewer(name: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"} if name else {}


def new_product(
    container: Container, price: str = "10.00", *, publish: bool = True
) -> tuple[UUID, str]:
    """A product written through the real commands; its id and the consistency token."""
    product_id = uuid4()
    written = container.catalog_commands.create_product(
        SELLER,
        product_id,
        SELLER.user_id,
        f"SKU-{product_id.hex[:8]}",
        f"Cached thing {product_id.hex[:4]}",
        description="Kept in Redis.",
        attributes={"color": "teal"},
        price=Money.of(price, "EUR"),
    )
    category_id = uuid4()
    container.catalog_commands.create_category(ADMIN, category_id, f"Shelf {category_id.hex[:4]}")
    container.catalog_commands.categorise(SELLER, product_id, [category_id])
    if publish:
        written = container.catalog_commands.publish(SELLER, product_id)
    assert written.position is not None
    return product_id, str(written.position)


def vouched(container: Container) -> Callable[[], bool]:
    """The follower vouches for the cache (it is caught up): readers may fill it."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"{container.settings.product_cache_prefix}product:state"
    return lambda: bool(client.exists(key))


def followed_generation(container: Container) -> str | None:
    """The generation whose cache the follower vouches for."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    state = client.get(f"{container.settings.product_cache_prefix}product:state")
    client.close()
    return state.decode().split(":")[0] if isinstance(state, bytes) else None


def price_of(answer: httpx.Response) -> str:
    return str(answer.json()["price"]["amount"])


async def read(client: httpx.AsyncClient, product_id: UUID, **kw: Any) -> httpx.Response:
    return await client.get(f"/products/{product_id}", **kw)


async def postgres_view(container: Container, product_id: UUID) -> Any:
    """The product as the read API answered it before the cache: its dict, encoded
    by FastAPI."""
    async with container.read_pool.connection() as conn:
        found = await product_detail(conn, product_id, admin=True)
    return jsonable_encoder(found)


def cache_of(container: Container) -> RedisProductCache:
    assert container.product_cache is not None
    return container.product_cache


# --- hits ------------------------------------------------------------------------------


def test_a_hit_serves_what_postgres_has(cached: Container) -> None:
    asyncio.run(check_hit(cached))


async def check_hit(container: Container) -> None:
    product_id, token = new_product(container, "12.50")
    cache = cache_of(container)
    async with api(container) as client:
        fresh = await read(client, product_id, headers={"X-Consistency-Token": token})
        assert fresh.status_code == 200, fresh.text
        eventually(vouched(container), "the follower vouches for the cache")
        first = await read(client, product_id)  # a miss: Postgres, then stored
        hits = cache.counts["hit"]
        second = await read(client, product_id)
        assert cache.counts["hit"] == hits + 1
        assert second.status_code == 200
        assert second.headers["content-type"] == "application/json"
        assert second.content == first.content
        assert second.json() == fresh.json() == await postgres_view(container, product_id)
        assert second.json()["price"] == {"amount": "12.50", "currency": "EUR"}


# --- invalidation by events ---------------------------------------------------------------


def test_price_changes_and_unpublishing_reach_the_api_through_the_follower(
    cached: Container,
) -> None:
    asyncio.run(check_updates(cached))


async def check_updates(container: Container) -> None:
    product_id, token = new_product(container, "10.00")
    cache = cache_of(container)
    async with api(container) as client:
        await read(client, product_id, headers={"X-Consistency-Token": token})
        eventually(vouched(container), "the follower vouches for the cache")
        await read(client, product_id)
        assert (await read(client, product_id)).json()["price"]["amount"] == "10.00"
        hits = cache.counts["hit"]
        assert hits > 0

        container.catalog_commands.change_price(SELLER, product_id, Money.of("8.00", "EUR"))

        async def repriced() -> bool:
            return price_of(await read(client, product_id)) == "8.00"

        await eventually(repriced, "the new price is served")
        await eventually(repriced, "... and then from the cache again")
        before = cache.counts["hit"]
        assert (await read(client, product_id)).json()["price"]["amount"] == "8.00"
        assert cache.counts["hit"] == before + 1

        container.catalog_commands.unpublish(SELLER, product_id)

        async def hidden() -> bool:
            return (await read(client, product_id)).status_code == 404

        await eventually(hidden, "an unpublished product is no longer shown to shoppers")
        for viewer in ("customer", "other-seller", None):
            answer = await read(client, product_id, headers=as_viewer(viewer))
            assert answer.status_code == 404, viewer
            assert answer.headers["content-type"].startswith("application/problem+json")
        for viewer in ("seller", "admin"):
            answer = await read(client, product_id, headers=as_viewer(viewer))
            assert answer.status_code == 200 and answer.json()["status"] == "unpublished"


def test_a_cached_draft_is_not_leaked_to_other_viewers(cached: Container) -> None:
    asyncio.run(check_no_leak(cached))


async def check_no_leak(container: Container) -> None:
    product_id, token = new_product(container, publish=False)
    cache = cache_of(container)
    async with api(container) as client:
        eventually(vouched(container), "the follower vouches for the cache")
        seller = as_viewer("seller")
        mine = await read(client, product_id, headers={**seller, "X-Consistency-Token": token})
        assert mine.status_code == 200 and mine.json()["status"] == "draft"
        await read(client, product_id, headers=seller)  # stored in the cache by now
        hits = cache.counts["hit"]
        assert (await read(client, product_id, headers=seller)).status_code == 200
        assert cache.counts["hit"] == hits + 1
        for viewer in ("customer", "other-seller", None):
            answer = await read(client, product_id, headers=as_viewer(viewer))
            assert answer.status_code == 404, viewer
        assert cache.counts["hit"] == hits + 4, "the refusals were answered from the cache"
        assert (await read(client, product_id, headers=as_viewer("admin"))).status_code == 200


# --- the version guard --------------------------------------------------------------------


def test_the_guard_refuses_an_older_revision(redis_url: str, prefix: str) -> None:
    asyncio.run(check_guard(redis_url, prefix))


async def check_guard(redis_url: str, prefix: str) -> None:
    reader, invalidator = connect(redis_url, prefix, 60, None)
    product_id = uuid4()
    try:
        position = invalidator.resume(1, lambda: 100)
        assert position == 100
        assert invalidator.invalidate(1, [], 100, caught_up=True, categories_position=0)

        async def put(revision: int, price: str, head: int = 100) -> None:
            snapshot = ProductSnapshot(
                document={"id": product_id, "price": price},
                status="published",
                seller_id=SELLER.user_id,
                revision=revision,
                generation=1,
                head=head,
            )
            await reader.put(snapshot, orjson.dumps(snapshot.document))

        async def cached_price() -> str | None:
            hit = await reader.get(product_id)
            return None if hit is None else str(orjson.loads(hit.body)["price"])

        assert await cached_price() is None
        await put(50, "new")
        assert await cached_price() == "new"
        await put(40, "old")  # a reader that read the row before revision 50
        assert await cached_price() == "new"
        # The follower tombstones revision 120: the entry is gone, and a reader still
        # holding revision 50 cannot bring the old product back; one that read
        # revision 120 itself may replace the tombstone.
        assert invalidator.invalidate(
            1, [(product_id, 120)], 120, caught_up=True, categories_position=0
        )
        assert await cached_price() is None
        await put(50, "new", head=120)
        assert await cached_price() is None
        await put(120, "current", head=120)
        assert await cached_price() == "current"
        # A redelivered tombstone of the same revision leaves the current entry alone.
        assert invalidator.invalidate(
            1, [(product_id, 120)], 120, caught_up=True, categories_position=0
        )
        assert await cached_price() == "current"
        await put(121, "newest", head=121)
        assert await cached_price() == "newest"
        # A snapshot from before the follower's floor may predate a lost tombstone.
        other = uuid4()
        older = ProductSnapshot({"id": other}, "published", SELLER.user_id, 99, 1, head=99)
        await reader.put(older, b"{}")
        assert await reader.get(other) is None
        # ...and one of another generation than the follower's is not stored.
        await put(200, "gen2", head=200)
        assert await cached_price() == "gen2"
        foreign = dataclasses.replace(older, revision=300, generation=2, head=300)
        await reader.put(foreign, b"{}")
        assert await reader.get(other) is None
    finally:
        await reader.close()


# --- Redis down, slow, or without its memory ------------------------------------------------


def _closed_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_down_answers_from_postgres(settings: Settings, prefix: str) -> None:
    container = shop(settings, f"redis://127.0.0.1:{_closed_port()}/0", prefix)
    container.start_projections()  # the follower fails, logs and retries; nothing else does
    try:
        asyncio.run(check_down(container))
    finally:
        container.close()


async def check_down(container: Container) -> None:
    product_id, token = new_product(container, "3.00")
    cache = cache_of(container)
    async with api(container) as client:
        answer = await read(client, product_id, headers={"X-Consistency-Token": token})
        assert answer.status_code == 200 and answer.json()["price"]["amount"] == "3.00"
        for _ in range(5):
            answer = await read(client, product_id)
            assert answer.status_code == 200, answer.text
            assert answer.json()["price"]["amount"] == "3.00"
        assert (await read(client, uuid4())).status_code == 404
    # One failure opened the breaker: the next requests did not ask Redis at all.
    assert cache.counts["error"] == 1
    assert cache.counts["bypass"] == 5
    assert cache.counts["hit"] == 0
    follower = container.cache_follower
    assert follower is not None and follower.last_error is not None


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_hanging_redis_costs_one_timeout_then_the_breaker_skips_it(
    settings: Settings, prefix: str, silent_redis: int
) -> None:
    container = shop(settings, f"redis://127.0.0.1:{silent_redis}/0", prefix)
    try:
        asyncio.run(check_hanging(container))
    finally:
        container.close()


async def check_hanging(container: Container) -> None:
    container.start_projections()
    product_id, token = new_product(container, "4.00")
    cache = cache_of(container)
    async with api(container) as client:
        first = await read(client, product_id, headers={"X-Consistency-Token": token})
        assert first.status_code == 200  # a token: the cache is not asked
        for _ in range(4):
            answer = await read(client, product_id)
            assert answer.status_code == 200 and answer.json()["price"]["amount"] == "4.00"
    assert cache.counts["error"] == 1  # the first read timed out...
    assert cache.counts["bypass"] == 3  # ...the others went straight to Postgres


def test_redis_losing_its_memory_keeps_answers_correct(
    cached: Container, redis_url: str, prefix: str
) -> None:
    asyncio.run(check_memory_loss(cached, redis.Redis.from_url(redis_url), prefix))


async def check_memory_loss(container: Container, client: redis.Redis, prefix: str) -> None:
    product_id, token = new_product(container, "20.00")
    cache = cache_of(container)
    async with api(container) as api_client:
        await read(api_client, product_id, headers={"X-Consistency-Token": token})
        eventually(vouched(container), "the follower vouches for the cache")
        await read(api_client, product_id)
        hits = cache.counts["hit"]
        await read(api_client, product_id)
        assert cache.counts["hit"] == hits + 1

        assert forget(client, prefix) >= 3  # the state, the follower's hash, the entry
        answer = await read(api_client, product_id)
        assert answer.status_code == 200 and answer.json()["price"]["amount"] == "20.00"
        container.catalog_commands.change_price(SELLER, product_id, Money.of("21.00", "EUR"))

        async def repriced_from_cache() -> bool:
            before = cache.counts["hit"]
            answer = await read(api_client, product_id)
            return answer.json()["price"]["amount"] == "21.00" and cache.counts["hit"] > before

        await eventually(repriced_from_cache, "the new price, served from a new cache")
        assert (await read(api_client, product_id)).json()["price"]["amount"] == "21.00"


# --- restarts, read-your-writes, generation swaps --------------------------------------------


def test_a_restarted_follower_resumes_without_missing_a_change(
    cached: Container, redis_url: str, prefix: str
) -> None:
    asyncio.run(check_restart(cached, redis_url, prefix))


async def check_restart(container: Container, redis_url: str, prefix: str) -> None:
    changed, token = new_product(container, "30.00")
    untouched, _ = new_product(container, "31.00")
    cache = cache_of(container)
    follower = container.cache_follower
    assert follower is not None
    async with api(container) as client:
        await read(client, changed, headers={"X-Consistency-Token": token})
        eventually(vouched(container), "the follower vouches for the cache")
        for product_id in (changed, untouched, changed, untouched):
            await read(client, product_id)
        follower.stop()

        written = container.catalog_commands.change_price(SELLER, changed, Money.of("29.00", "EUR"))
        assert written.position is not None
        # Read-your-writes holds with the follower stopped: a token skips the cache.
        mine = await read(client, changed, headers={"X-Consistency-Token": str(written.position)})
        assert mine.json()["price"]["amount"] == "29.00"

        # A new follower, as a restarted process would build it, with its own client.
        _, invalidator = connect(redis_url, prefix, 60, None)
        restarted = ProductCacheFollower(container.pool, invalidator)
        restarted.start()
        try:

            async def repriced() -> bool:
                return price_of(await read(client, changed)) == "29.00"

            await eventually(repriced, "the change made while the follower was down")
            # It resumed in the same cache: the product it did not touch is still a hit.
            before = cache.counts["hit"]
            assert (await read(client, untouched)).json()["price"]["amount"] == "31.00"
            assert cache.counts["hit"] == before + 1
        finally:
            restarted.stop()


def test_a_generation_swap_moves_the_cache_to_the_new_generation(cached: Container) -> None:
    asyncio.run(check_swap(cached))


async def check_swap(container: Container) -> None:
    product_id, token = new_product(container, "40.00")
    cache = cache_of(container)
    async with api(container) as client:
        await read(client, product_id, headers={"X-Consistency-Token": token})
        eventually(vouched(container), "the follower vouches for the cache")
        await read(client, product_id)
        assert followed_generation(container) == "1"
        rebuild(container, "catalog_products")

        def on_generation_two() -> bool:
            return followed_generation(container) == "2"

        eventually(on_generation_two, "the follower follows generation 2")
        container.catalog_commands.change_price(SELLER, product_id, Money.of("41.00", "EUR"))

        async def repriced_from_cache() -> bool:
            before = cache.counts["hit"]
            answer = await read(client, product_id)
            return answer.json()["price"]["amount"] == "41.00" and cache.counts["hit"] > before

        await eventually(repriced_from_cache, "the new generation's product, from the cache")
        assert (await read(client, product_id)).json() == await postgres_view(container, product_id)


def test_without_redis_there_is_no_cache(settings: Settings) -> None:
    container = bootstrap(settings)
    try:
        assert container.product_cache is None
        assert container.read_services().product_cache is None
    finally:
        container.close()


def test_bad_tokens_and_ids_are_refused_cleanly(cached: Container) -> None:
    asyncio.run(check_refusals(cached))


async def check_refusals(container: Container) -> None:
    product_id, _ = new_product(container)
    async with api(container) as client:
        for params, headers, status in [
            ({"after": "not-a-token"}, {}, 400),
            ({}, {"X-Consistency-Token": "catalog:" + "9" * 1000}, 400),
            ({}, {"X-Consistency-Token": "catalog:999999"}, 503),
            ({}, {"Authorization": "Bearer nobody"}, 401),
        ]:
            answer = await read(client, product_id, params=params, headers=headers)
            assert answer.status_code == status, (params, headers, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        # A log this view does not follow is not waited for: answered at once.
        answer = await read(client, product_id, headers={"X-Consistency-Token": "users:999999"})
        assert answer.status_code == 200, answer.text
        answer = await client.get("/products/not-a-uuid")
        assert answer.status_code == 422
    operation = openapi()["paths"]["/products/{product_id}"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"product_id", "X-Consistency-Token", "after", "If-None-Match"}


def openapi() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(catalog_router.router)
    return app.openapi()
