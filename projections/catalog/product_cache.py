"""The product-detail cache: its ports (the follower is in ``product_cache_follower``).

The cache is filled by readers (a miss reads Postgres and stores what it read) and
invalidated only by events, through ``catalog_products``' change feed
(``projections.catalog.product_feed``): the follower reads every row changed after its
position and replaces each cached entry with a tombstone carrying the row's new
revision. Every write to an entry is guarded by revision ("only if newer"), so a
reader that read a row before a change can never overwrite the tombstone of that
change, whichever arrives first.

Tombstones rather than writing the new document through: the follower then writes
a few bytes per change whatever the product's size, cold products never enter the
cache (a tombstone is a few bytes that expire within a minute, so a seed or a stock
sweep over a million products leaves nothing behind), and the one function that
turns a row into what clients see stays on the read path.

Staleness: an entry can be behind Postgres by the follower's lag (its poll interval
plus a batch); the adapter serves entries only while the follower vouches for them
(it was caught up within the last few seconds), so a dead or lagging follower turns
the cache off instead of serving old products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

CACHED_VIEW = "catalog_products"


class CacheUnavailable(Exception):
    """The cache's store did not answer (down, slow, or refused the command)."""


@dataclass(frozen=True)
class CachedProduct:
    """A hit: enough to decide who may see it, and the document as stored."""

    status: str
    seller_id: UUID
    body: bytes
    """The product document, JSON, exactly as the read API answers it."""
    revision: int
    """The revision of the row the body was made from (its HTTP validator)."""
    generation: int
    """The generation of ``catalog_products`` that row was read from."""


@dataclass(frozen=True)
class ProductSnapshot:
    """A product row as read from the active generation, with what a guarded write
    needs to know about the moment it was read."""

    document: dict[str, Any]
    status: str
    seller_id: UUID
    revision: int
    """The row's revision: entries are replaced only by higher ones."""
    generation: int
    """The generation of ``catalog_products`` the row was read from."""
    head: int
    """The last revision of that generation when the row was read (same snapshot)."""


class ProductCache(Protocol):
    """What the read API asks of the cache (async, on the event loop). Neither
    method raises for an unavailable store: the read API then goes to Postgres."""

    async def get(self, product_id: UUID) -> CachedProduct | None:
        """The cached product, or None on a miss, a tombstone, or no usable cache."""
        ...

    async def put(self, snapshot: ProductSnapshot, body: bytes) -> None:
        """Store what a miss read from Postgres, unless the entry holds a newer
        revision or the follower cannot vouch for the snapshot."""
        ...


class CacheInvalidator(Protocol):
    """What the follower asks of the cache (sync, in its own thread). Every method
    may raise ``CacheUnavailable``."""

    def resume(self, generation: int, head: Callable[[], int]) -> int:
        """The revision after which to follow ``generation``: the stored position,
        or, when the store has none (first start, or it lost its memory), a fresh
        empty cache starting at ``head()``."""
        ...

    def invalidate(
        self,
        generation: int,
        changes: list[tuple[UUID, int]],
        position: int,
        caught_up: bool,
        *,
        categories_position: int,
    ) -> bool:
        """Tombstone each (product id, revision), then record ``position``; with
        ``caught_up``, vouch for the cache for a few more seconds (and for the search
        cache, whose answers also show category names: ``categories_position`` is how
        far in the catalog log the category view is). False when the store lost its
        memory since ``resume``: resume again."""
        ...
