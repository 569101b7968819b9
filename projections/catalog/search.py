"""The catalog search port: what the read API asks of a search engine.

Two adapters: ``projections.catalog.search_postgres`` (full-text search over
``read.catalog_products``, the embedded default) and ``infra.opensearch.search``
(an OpenSearch index the indexer fills from the view's change feed). Both take the
same input, refuse the same malformed input (``BadSearch``, ``BadCursor``) and answer
the same ``SearchResult`` shape; ``tests/integration/test_search_contract.py`` holds
them to it.

In front of either, with Redis, a cache of whole answers
(``infra.redis.search_cache``): near-real-time, as OpenSearch's own request cache is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from projections.catalog.queries import ProductFilter, SearchResult


class SearchUnavailable(RuntimeError):
    """The search engine cannot answer now (unreachable, or its index is being
    rebuilt after it lost it); the caller may retry later."""


class CatalogSearch(Protocol):
    async def search(
        self,
        text: str,
        filters: ProductFilter,
        sort: str = "relevance",
        cursor: str | None = None,
        limit: int = 24,
        facets: bool = True,
    ) -> SearchResult:
        """Published products matching every word of ``text`` (each as a prefix;
        when nothing matches, words close to them: ``mode`` says which) and
        ``filters``, in ``sort`` order, ``limit`` at a time. ``cursor`` is the
        ``next_cursor`` of the previous page. The first page carries the total and
        the facets (when ``facets``)."""
        ...

    async def wait_until_indexed(self, timeout: float) -> bool:
        """Read-your-writes beyond ``catalog_products``: True once search answers
        from every change the view holds now (at once for an adapter that searches
        the view itself), False when ``timeout`` seconds pass first."""
        ...


class SearchAnswerCache(Protocol):
    async def fetch(self, request: bytes, answer: Callable[[], Awaitable[bytes]]) -> bytes:
        """The answer (JSON) to the search ``request`` (its canonical form): cached,
        or from ``answer()``, stored when the cache can vouch for it. Identical
        searches in flight at once share one ``answer()``. Never raises for an
        unavailable cache (``answer()``'s own errors propagate)."""
        ...
