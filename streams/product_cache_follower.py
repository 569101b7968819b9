"""The follower of the product cache: it reads ``catalog_products``' change feed and
invalidates the cache through the ``CacheInvalidator`` port (see
``projections.product_cache`` for why tombstones, and what staleness remains)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg import Error as DatabaseError
from psycopg_pool import ConnectionPool

from projections.engine import generation_schema
from projections.generations import active_generations
from projections.positions import tracked_position
from projections.product_cache import CACHED_VIEW, CacheInvalidator, CacheUnavailable
from projections.product_feed import changed_revisions, head_revision

log = logging.getLogger(__name__)

CATEGORY_NAMES = "catalog_categories"
"""The view search facets take category names from."""
FEED_BATCH = 500
POLL_INTERVAL = 0.1
MAX_BACKOFF = 5.0


@dataclass
class ProductCacheFollower:
    """Follows the change feed of the active generation of ``catalog_products``
    and invalidates the cache. Runs in a thread beside the projections; on a
    generation swap it moves to the new generation (whose cache keys differ); on
    errors it logs and retries with backoff."""

    pool: ConnectionPool[Connection[Any]]
    cache: CacheInvalidator
    poll_interval: float = POLL_INTERVAL
    _stopping: threading.Event | None = None
    _thread: threading.Thread | None = None
    _generation: int | None = None
    _position: int = 0
    last_error: str | None = None

    def start(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stopping,), name="product-cache-follower", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._stopping is not None and self._thread is not None:
            self._stopping.set()
            self._thread.join()
        self._thread = None

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

    def _run(self, stopping: threading.Event) -> None:
        failures = 0
        while not stopping.is_set():
            try:
                caught_up = self.step()
            # Redis or Postgres away, or a generation dropped under a swap: retried.
            except (CacheUnavailable, DatabaseError) as error:
                failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                pause = min(MAX_BACKOFF, self.poll_interval * 2**failures)
                log.warning("product cache follower: %s; retrying in %.1fs", error, pause)
                stopping.wait(pause)
                continue
            failures = 0
            self.last_error = None
            if caught_up:
                stopping.wait(self.poll_interval)
