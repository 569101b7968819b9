"""The cart view in Redis: ``shop run`` with ``SHOP_REDIS_URL`` keeps each cart as a
Redis hash; what the shopper sees equals what they did, and a cart Redis loses is
rebuilt from its events on the next read."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.api import CONSISTENCY, written
from tests.support.catalog_client import listed_product, make_cast
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def redis_server(
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    prefix: str,
) -> Iterator[Server]:
    settings = {"SHOP_REDIS_URL": redis_url, "SHOP_PRODUCT_CACHE_PREFIX": prefix}
    try:
        with running_server(
            make_database(),
            Path(tmp_path_factory.mktemp("shop-redis")),
            {**NO_ADDRESS_LIMITS, **settings},
        ) as running:
            yield running
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def test_carts_live_in_redis_and_are_rebuilt_when_lost(
    redis_server: Server, redis_url: str, prefix: str
) -> None:
    server = redis_server
    cast = make_cast(server)
    with server.client() as client:
        product_id, sku = listed_product(client, cast, "3.50", stock=10)
        shopper = verified_account(server, client, "redis")
        added = client.post(
            "/cart/lines", json={"product_id": product_id, "quantity": 2}, headers=shopper.headers
        )
        cart_id = written(added, context="ordering")
        changed = client.put(f"/cart/lines/{sku}", json={"quantity": 3}, headers=shopper.headers)
        token = changed.json()["position"]
        seen = client.get("/cart", headers={**shopper.headers, CONSISTENCY: token}).json()
        assert seen["total"] == {"amount": "10.50", "currency": "EUR"}
        assert seen["version"] == 3

        store = redis.Redis.from_url(redis_url)
        key = f"{prefix}cart:{cart_id}"
        assert int(store.hget(key, "version") or 0) == 3
        store.delete(key)  # Redis loses the cart
        rebuilt = client.get("/cart", headers=shopper.headers).json()
        assert rebuilt == seen
        assert int(store.hget(key, "version") or 0) == 3
        store.close()
