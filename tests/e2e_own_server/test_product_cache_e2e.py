"""The product-detail cache wired into ``shop run`` (``SHOP_REDIS_URL`` set): reads are
served from Redis (counted in /metrics), a change reaches them through the
follower (and changes their ETag), and stopping the server closes cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.api import CONSISTENCY, written
from tests.support.catalog_client import new_sku, product_body
from tests.support.polling import eventually
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cached_server(
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[Server]:
    prefix = f"e2e-{uuid.uuid4().hex[:12]}:"
    try:
        with running_server(
            make_database(),
            tmp_path_factory.mktemp("shop-cache"),
            {"SHOP_REDIS_URL": redis_url, "SHOP_PRODUCT_CACHE_PREFIX": prefix},
        ) as running:
            yield running
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    log = Path(running.log_path).read_text()
    assert "Traceback" not in log, log


def cache_hits(client: httpx.Client) -> int:
    metrics = client.get("/metrics").text
    for line in metrics.splitlines():
        if line.startswith('eventshop_product_cache_requests_total{result="hit"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    raise AssertionError("no product cache counter in /metrics")


def test_product_details_come_from_redis_and_follow_changes(cached_server: Server) -> None:
    with cached_server.client() as client:
        admin = cached_server.admin_headers(client)
        category = written(client.post("/categories", json={"name": "Cached"}, headers=admin), 201)
        product_id = written(
            client.post(
                "/products",
                json=product_body(new_sku(), price={"amount": "15.00", "currency": "EUR"}),
                headers=admin,
            ),
            201,
        )
        written(
            client.put(
                f"/products/{product_id}/categories",
                json={"category_ids": [category]},
                headers=admin,
            )
        )
        published = client.post(f"/products/{product_id}/publish", headers=admin)
        written(published)
        token = published.headers[CONSISTENCY]
        mine = client.get(f"/products/{product_id}", headers={CONSISTENCY: token})
        assert mine.status_code == 200 and mine.json()["price"]["amount"] == "15.00"

        def served_from_cache() -> bool:
            before = cache_hits(client)
            answer = client.get(f"/products/{product_id}")
            return answer.json() == mine.json() and cache_hits(client) > before

        eventually(served_from_cache, "a read served from Redis")
        # HTTP validators: the cached entry's tag is the Postgres row's (the same
        # revision), and a revalidation is answered from Redis too.
        tag = mine.headers["etag"]
        before = cache_hits(client)
        unchanged = client.get(f"/products/{product_id}", headers={"If-None-Match": tag})
        assert unchanged.status_code == 304 and unchanged.headers["etag"] == tag
        assert cache_hits(client) > before

        repriced = client.put(
            f"/products/{product_id}/price",
            json={"amount": "12.00", "currency": "EUR"},
            headers=admin,
        )
        written(repriced)

        def new_price_from_cache() -> bool:
            before = cache_hits(client)
            answer = client.get(f"/products/{product_id}")
            return answer.json()["price"]["amount"] == "12.00" and cache_hits(client) > before

        eventually(new_price_from_cache, "the new price, from Redis")
        before = cache_hits(client)
        changed = client.get(f"/products/{product_id}", headers={"If-None-Match": tag})
        assert changed.status_code == 200 and changed.json()["price"]["amount"] == "12.00"
        assert changed.headers["etag"] != tag and cache_hits(client) > before
        again = client.get(
            f"/products/{product_id}", headers={"If-None-Match": changed.headers["etag"]}
        )
        assert again.status_code == 304
        assert client.get("/health").json()["status"] == "ok"
