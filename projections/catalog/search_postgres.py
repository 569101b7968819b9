"""The PostgreSQL adapter of catalog search: ``search_queries.search_products``
over the read pool. It searches the view itself, so a search that waited for the
view (read-your-writes) needs no further wait."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from projections.catalog.search import ProductFilter, SearchResult
from projections.catalog.search_queries import SEARCH_CANDIDATES, search_products


class PostgresCatalogSearch:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        candidates: int = SEARCH_CANDIDATES,
    ) -> None:
        self._pool = pool
        self._candidates = candidates

    async def search(
        self,
        text: str,
        filters: ProductFilter,
        sort: str = "relevance",
        cursor: str | None = None,
        limit: int = 24,
        facets: bool = True,
    ) -> SearchResult:
        async with self._pool.connection() as conn:
            return await search_products(
                conn, text, filters, sort, cursor, limit, facets=facets, candidates=self._candidates
            )

    async def wait_until_indexed(self, timeout: float) -> bool:
        return True
