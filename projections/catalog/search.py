"""The catalog search port: what the read API asks of a search engine, and its
vocabulary, which both adapters import from here: the filters (``ProductFilter``),
the answer (``SearchResult``), how search text becomes words (``search_terms``, so
both refuse the same input), and the facets' buckets.

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

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from domain.refusals import BadQuery

Sort = Literal["price_asc", "price_desc", "newest", "rating", "relevance"]
SORTS: tuple[str, ...] = ("price_asc", "price_desc", "newest", "rating", "relevance")

MAX_TERMS = 8
MAX_TERM_LENGTH = 64
PRICE_EDGES: tuple[Decimal, ...] = tuple(
    Decimal(e) for e in ("0", "10", "25", "50", "100", "250", "500", "1000")
)
"""Price bucket lower bounds, in major units of each currency; the last is open."""
RATING_BUCKETS: tuple[int, ...] = (4, 3, 2, 1)
"""Minimum-rating facet: products rated at least this (average of visible reviews)."""
MAX_CATEGORY_FACETS = 50
MIN_CORRECTED_TERM = 3
"""Shorter words are never corrected (typo tolerance)."""

WORD = re.compile(r"[^\W_]+")
"""A word of search text, or of the catalog's vocabulary: letters and digits."""


class BadSearch(BadQuery, ValueError):
    """Search text with nothing searchable in it."""


@dataclass(frozen=True)
class ProductFilter:
    category_id: UUID | None = None
    """Products in this category or any category below it."""
    currency: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_rating: Decimal | None = None
    in_stock: bool | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """Each attribute must equal the value given."""


@dataclass(frozen=True)
class SearchResult:
    items: list[dict[str, Any]]
    next_cursor: str | None
    mode: str
    """``exact`` (every word matched, as a prefix) or ``fuzzy`` (typo tolerance)."""
    total: int | None
    facets: dict[str, Any] | None
    exhaustive: bool = True
    """Whether ``total`` and ``facets`` count every match. False: more products
    match than the engine counts, ``total`` is a lower bound and the facets count
    that many of the matches (each count a lower bound too)."""


def search_terms(text: str) -> list[str]:
    """The words of a search: letters and digits only, lower-cased, at most
    ``MAX_TERMS`` (longer words are cut to ``MAX_TERM_LENGTH``)."""
    words = [w.lower()[:MAX_TERM_LENGTH] for w in WORD.findall(text)]
    unique = list(dict.fromkeys(words))[:MAX_TERMS]
    if not unique:
        raise BadSearch("the search has no words to look for")
    return unique


def price_buckets(currency: str, counts: dict[int, int]) -> dict[str, Any]:
    return {
        "currency": currency,
        "buckets": [
            {
                "min": str(low),
                "max": str(PRICE_EDGES[i + 1]) if i + 1 < len(PRICE_EDGES) else None,
                "count": counts.get(i + 1, 0),
            }
            for i, low in enumerate(PRICE_EDGES)
        ],
    }


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
