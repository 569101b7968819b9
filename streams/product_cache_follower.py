"""The follower of the product cache: it reads ``catalog_products``' change feed and
invalidates the cache through the ``CacheInvalidator`` port (see
``projections.catalog.product_cache`` for why tombstones, and what staleness remains)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from projections.catalog.product_cache import CACHED_VIEW, CacheInvalidator
from projections.catalog.product_feed import changed_revisions, head_revision
from projections.engine import generation_schema
from projections.generations import active_generations
from projections.positions import tracked_position
from streams.supervision import Supervised

log = logging.getLogger(__name__)

CATEGORY_NAMES = "catalog_categories"
"""The view search facets take category names from."""
FEED_BATCH = 500
POLL_INTERVAL = 0.1
MAX_BACKOFF = 5.0


@dataclass
class ProductCacheFollower:
    """Follows the change feed of the active generation of ``catalog_products``
    and invalidates the cache. Runs in a supervised loop beside the projections; on
    a generation swap it moves to the new generation (whose cache keys differ);
    Redis or Postgres away, or a generation dropped under a swap: retried with
    backoff."""

    pool: ConnectionPool[Connection[Any]]
    cache: CacheInvalidator
    poll_interval: float = POLL_INTERVAL
    _generation: int | None = None
    _position: int = 0
    _loop: Supervised = field(init=False)

    def __post_init__(self) -> None:
        self._loop = Supervised(
            "product_cache_follower", self.step, self.poll_interval, max_backoff=MAX_BACKOFF
        )

    @property
    def last_error(self) -> str | None:
        return self._loop.last_error

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def step(self) -> bool:
        """Follow one batch; True when caught up with the feed."""
        with self.pool.connection() as conn:
            generation = active_generations(conn).get(CACHED_VIEW)
            if generation is None:
                return True
            schema = generation_schema(CACHED_VIEW, generation)
            if generation != self._generation:
                self._position = self.cache.resume(generation, lambda: head_revision(conn, schema))
                self._generation = generation
            changes = changed_revisions(conn, schema, self._position, FEED_BATCH)
            # Read after the feed: a search answer computed later is at least this new.
            categories = tracked_position(conn, CATEGORY_NAMES, "catalog")
        position = changes[-1][1] if changes else self._position
        caught_up = len(changes) < FEED_BATCH
        if self.cache.invalidate(
            generation, changes, position, caught_up, categories_position=categories
        ):
            self._position = position
        else:
            log.warning("product cache lost its memory: starting it afresh")
            self._generation = None
            return False
        return caught_up
