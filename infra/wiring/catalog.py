"""The catalog area, built: products, stock and reviews (three Applications and
their commands), the search engine (PostgreSQL full-text search, or OpenSearch
when configured), the Redis caches in front of product detail and search, and
what follows the product view's change feed to keep them fresh. The OpenSearch
adapters are imported only when it is configured: opensearchpy (with aiohttp) costs
every process over a second of start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsourcing.application import Application
from prometheus_client.registry import Collector

from commands.catalog.inventory import InventoryApplication, InventoryCommands
from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.catalog.reviews import ReviewCommands, ReviewsApplication
from commands.ports import Clock
from infra.postgres.purchase_history import OrdersPurchaseHistory
from infra.redis import product_cache, search_cache
from infra.redis.product_cache import RedisCacheInvalidator, RedisProductCache
from infra.redis.reads import CacheCollector
from infra.redis.search_cache import RedisSearchCache
from infra.settings import Settings
from infra.wiring.shared import Pools
from infra.wiring.views import view_specs
from projections.catalog.search import CatalogSearch
from projections.catalog.search_postgres import PostgresCatalogSearch
from projections.catalog.views import CATALOG_VIEWS
from streams.embedded import ProjectionSpec
from streams.product_cache_follower import ProductCacheFollower

if TYPE_CHECKING:
    from infra.opensearch.index import ProductIndexer


@dataclass
class Catalog:
    app: CatalogApplication
    inventory_app: InventoryApplication
    reviews_app: ReviewsApplication
    commands: CatalogCommands
    inventory: InventoryCommands
    reviews: ReviewCommands
    search: CatalogSearch
    specs: list[ProjectionSpec]
    ddl: list[str]
    """The tables of its adapters, created by ``Container.migrate``."""
    search_indexer: ProductIndexer | None = None
    """Keeps the OpenSearch index in step with the product view; None without it."""
    product_cache: RedisProductCache | None = None
    """The read side of the product cache; None without Redis (Postgres only)."""
    search_cache: RedisSearchCache | None = None
    """Whole search answers in Redis; None without Redis or with SHOP_SEARCH_CACHE off."""
    cache_invalidator: RedisCacheInvalidator | None = None
    cache_follower: ProductCacheFollower | None = None
    """Made by ``start_followers``, in the process that runs the projections."""

    def applications(self) -> list[Application[Any]]:
        return [self.app, self.inventory_app, self.reviews_app]

    def collectors(self) -> list[Collector]:
        """The caches' read outcomes, for /metrics."""
        caches = [
            ("eventshop_product_cache_requests", "Product detail reads", self.product_cache),
            ("eventshop_search_cache_requests", "Searches", self.search_cache),
        ]
        return [
            CacheCollector(metric, what, cache.breaker)
            for metric, what, cache in caches
            if cache is not None
        ]

    def start_followers(self, pools: Pools) -> None:
        """What follows the product view's change feed rather than the logs."""
        if self.cache_invalidator is not None:
            self.cache_follower = ProductCacheFollower(pools.pool, self.cache_invalidator)
            self.cache_follower.start()
        if self.search_indexer is not None:
            self.search_indexer.start()

    def close(self) -> None:
        if self.search_indexer is not None:
            self.search_indexer.stop()
        if self.cache_follower is not None:
            self.cache_follower.stop()
        if self.cache_invalidator is not None:
            self.cache_invalidator.close()
        for app in self.applications():
            app.close()


def build(settings: Settings, pools: Pools, clock: Clock) -> Catalog:
    """``clock`` is unused today (the catalog's rules take their time from events),
    taken so every area is built the same way."""
    del clock
    app = CatalogApplication(env=pools.app_env)
    inventory_app = InventoryApplication(env=pools.app_env)
    reviews_app = ReviewsApplication(env=pools.app_env)
    commands = CatalogCommands(app)
    catalog = Catalog(
        app=app,
        inventory_app=inventory_app,
        reviews_app=reviews_app,
        commands=commands,
        inventory=InventoryCommands(inventory_app, commands),
        reviews=ReviewCommands(reviews_app, commands, OrdersPurchaseHistory(pools.pool)),
        search=PostgresCatalogSearch(pools.read_pool, settings.search_candidates),
        specs=view_specs(pools.conninfo, CATALOG_VIEWS),
        ddl=[],
    )
    if settings.redis_url:
        search_refresh = settings.search_cache_refresh if settings.search_cache else None
        catalog.product_cache, catalog.cache_invalidator = product_cache.connect(
            settings.redis_url,
            settings.product_cache_prefix,
            settings.product_cache_ttl,
            search_refresh,
        )
        if settings.search_cache:
            catalog.search_cache = search_cache.connect(
                settings.redis_url, settings.product_cache_prefix, settings.search_cache_ttl
            )
    if settings.opensearch_url:
        from opensearchpy import OpenSearch

        from infra.opensearch import index as opensearch_index
        from infra.opensearch.search import OpenSearchCatalogSearch

        client = OpenSearch(hosts=[settings.opensearch_url], timeout=10)
        alias = settings.opensearch_index
        catalog.search_indexer = opensearch_index.ProductIndexer(client, pools.pool, alias)
        catalog.search = OpenSearchCatalogSearch(client, pools.read_pool, alias)
        catalog.ddl.append(opensearch_index.DDL)
    return catalog
